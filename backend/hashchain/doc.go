// Package hashchain links lifecycle-log entries into a tamper-evident chain:
// each entry's hash covers its own canonical body and the previous entry's
// hash, so changing, removing or reordering any stored entry breaks every
// link after it.
package hashchain
