package eventlog

import (
	"encoding/json"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Event is one lifecycle-log entry. It holds only non-secret identifiers.
type Event struct {
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     record.Actor      `json:"actor"`
	RequestID string            `json:"request_id,omitempty"`
	Client    string            `json:"client,omitempty"`
	Key       string            `json:"key,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	Role      string            `json:"role,omitempty"`
	Version   int               `json:"version,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// MarshalJSON encodes an event with key-shaped text redacted from its
// details, which repeat free text of requests (revocation and lock
// reasons, notes, requested scopes). Every event reaches storage through
// this encoding, whichever way it is appended (Append, or Encode for a key
// change's WAL entry), so a key pasted into the wrong field is never
// written into the hash-chained log, where it could not be removed.
func (ev Event) MarshalJSON() ([]byte, error) {
	type plain Event // without this method
	p := plain(ev)
	p.Details = keyformat.RedactDetails(ev.Details)
	return json.Marshal(p)
}

// Encode returns ev as the log stores it, stamped with now unless it
// already carries a time. A caller that must keep an event before
// appending it (the WAL entry of a key change) keeps these bytes and
// appends them with AppendBody, so the entry is the same either way.
func Encode(ev Event, now time.Time) ([]byte, error) {
	if ev.Time.IsZero() {
		ev.Time = now
	}
	return json.Marshal(ev)
}
