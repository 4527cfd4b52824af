// Package schedule computes when a key is next due for rotation, from a
// fixed period or a standard 5-field cron schedule with an optional window.
package schedule
