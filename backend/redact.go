package backend

import (
	"encoding/json"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// MarshalJSON encodes a lifecycle-log event with key-shaped text redacted
// from its details, which repeat free text of requests (revocation and
// lock reasons, notes, requested scopes). Every event reaches storage
// through this encoding, whichever way it is appended (appendEvent, or a
// key change's WAL entry), so a key pasted into the wrong field is never
// written into the hash-chained log, where it could not be removed.
func (ev Event) MarshalJSON() ([]byte, error) {
	type plain Event // without this method
	p := plain(ev)
	p.Details = redactDetails(ev.Details)
	return json.Marshal(p)
}

// redactDetails returns details with key-shaped text redacted (details
// itself when there is none, else a copy).
func redactDetails(details map[string]string) map[string]string {
	var out map[string]string
	for k, v := range details {
		if r := keyformat.Redact(v); r != v {
			if out == nil {
				out = make(map[string]string, len(details))
				for k2, v2 := range details {
					out[k2] = v2
				}
			}
			out[k] = r
		}
	}
	if out == nil {
		return details
	}
	return out
}
