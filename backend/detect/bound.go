package detect

import (
	"sort"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Alert size bounds. An alert repeats what verify, a leak report or the
// sweep saw; the request limits keep that small, and these bounds make
// sure no alert (stored, logged or listed) can grow toward Vault's 1 MiB
// storage limit whatever it repeats, including alerts stored by an older
// version before the request limits existed.
const (
	// MaxAlertMessage is the most characters of an alert's message.
	MaxAlertMessage = 1024
	// MaxAlertDetail is the most characters of one detail's value.
	MaxAlertDetail = 4096
	// maxAlertDetails is the most details an alert keeps.
	maxAlertDetails = 32
	// maxAlertDetailKey is the most characters of a detail's name: as
	// many as a request allows for an identifier.
	maxAlertDetailKey = 128
)

// Bound cuts an alert's free text to the bounds above, and says so in
// details["truncated"]. A cut string ends in "…", one character past its
// bound. Alerts are bounded as they are stored and as they are read back.
func Bound(a *record.Alert) {
	cut := false
	if s, ok := truncateChars(a.Message, MaxAlertMessage); ok {
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
		if s, ok := truncateChars(v, MaxAlertDetail); ok {
			v, cut = s, true
			a.Details[k] = v
		}
		if s, ok := truncateChars(k, maxAlertDetailKey); ok {
			delete(a.Details, k)
			a.Details[s], cut = v, true
		}
	}
	if cut {
		if a.Details == nil {
			a.Details = map[string]string{}
		}
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
