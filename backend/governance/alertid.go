package governance

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Alert ids start with the raising time, in nanoseconds as 16 hex digits,
// then 16 random hex digits: they sort by raising time, which the retention
// and the open-alert counts (by UTC day raised) read back from the id alone,
// without reading the alert. The random part must keep ids apart when many
// alerts share a raising time (one sweep raises them all at its own "now"):
// with 64 bits, a million alerts at one instant collide with probability
// below 1e-7. Ids made with 8 random digits stay valid: only the time
// prefix is ever parsed.

// NewAlertID returns the id of an alert raised at now.
func NewAlertID(now time.Time) (string, error) {
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Sprintf("%016x", now.UnixNano()), err
	}
	return fmt.Sprintf("%016x%s", now.UnixNano(), hex.EncodeToString(buf)), nil
}

// AlertRaisedAt is when an alert was raised, read from its id; false for an
// id NewAlertID did not make.
func AlertRaisedAt(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)).UTC(), true
}

// RaisedBefore reports whether the alert with this id was raised before t.
// An id that is not a time is never before anything.
func RaisedBefore(id string, t time.Time) bool {
	raised, ok := AlertRaisedAt(id)
	return ok && raised.Before(t)
}
