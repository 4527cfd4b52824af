package backend

import (
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// retiredEvents are the key.retired entries of versions of k retired by one
// change; req is nil for background work.
func retiredEvents(req *logical.Request, k *record.Key, rs []record.Retirement) []eventlog.Event {
	out := make([]eventlog.Event, 0, len(rs))
	for _, r := range rs {
		ev := eventFor(req, eventlog.KeyRetired, k, r.Version)
		ev.Details = map[string]string{"reason": r.Reason}
		out = append(out, ev)
	}
	return out
}
