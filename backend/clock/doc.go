// Package clock lets the backend's time-dependent behaviour (rotation, grace,
// expiry) be driven by tests without sleeping.
package clock
