package backend

import (
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"sort"
)

// Alert size bounds. An alert repeats what verify, a leak report or the
// sweep saw; the request limits (limits.go) keep that small, and these
// bounds make sure no alert (stored, logged or listed) can grow toward
// Vault's 1 MiB storage limit whatever it repeats, including alerts
// stored by an older version before the request limits existed.
const (
	maxAlertMessage = 1024
	maxAlertDetail  = 4096
	maxAlertDetails = 32
)

// boundAlert cuts an alert's free text to the bounds above, and says so in
// details["truncated"].
func boundAlert(a *record.Alert) {
	cut := false
	if s, ok := truncateChars(a.Message, maxAlertMessage); ok {
		a.Message, cut = s, true
	}
	if len(a.Details) > maxAlertDetails {
		keys := make([]string, 0, len(a.Details))
		for k := range a.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys[maxAlertDetails:] {
			delete(a.Details, k)
		}
		cut = true
	}
	for k, v := range a.Details {
		if s, ok := truncateChars(v, maxAlertDetail); ok {
			a.Details[k], cut = s, true
		}
		if s, ok := truncateChars(k, limitName); ok {
			delete(a.Details, k)
			a.Details[s], cut = v, true
		}
	}
	if cut {
		a.Details["truncated"] = "true"
	}
}

// truncateChars cuts s to at most max characters; it reports whether it
// cut anything.
func truncateChars(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…", true
		}
		n++
	}
	return s, false
}
