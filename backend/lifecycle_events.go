package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
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

// withVersionCreated names, on an entry that ends a secret's life, when
// the version it ends was created (the whole key's entries: its newest
// version), so the governance fold can count lifespans without reading
// the key (governance/lifespan.go). The details are copied: callers may
// share one map between entries.
func withVersionCreated(ev eventlog.Event, k *record.Key) eventlog.Event {
	if !governance.EndsAVersion(ev.Type) || ev.Details[governance.DetailVersionCreated] != "" {
		return ev
	}
	n := ev.Version
	if n == 0 {
		n = k.LatestVersion()
	}
	v := k.Version(n)
	if v == nil || v.CreatedAt.IsZero() {
		return ev
	}
	details := make(map[string]string, len(ev.Details)+1)
	for name, value := range ev.Details {
		details[name] = value
	}
	details[governance.DetailVersionCreated] = v.CreatedAt.UTC().Format(time.RFC3339)
	ev.Details = details
	return ev
}
