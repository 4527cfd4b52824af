package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// Governance (SPEC §6, §7): approvals, lock-down, revocation lists, leaks,
// stale keys, alerts, metrics and the public key policy.

// govRuntime is the node-local, in-memory side of governance: the
// detector verify feeds, and the governance runtime (persisted state, marks,
// walkers and their locks).
type govRuntime struct {
	// det finds suspicious verify traffic; it owns its lock.
	det *detect.Detector
	// Runtime keeps the persisted governance state, the per-key marks and
	// the walkers of keys and alerts, with their locks.
	*governance.Runtime
}

// pathGovernance returns the governance paths.
func (b *apikeysBackend) pathGovernance() []*framework.Path {
	return framework.PathAppend(
		b.pathRequests(),
		b.pathClientOps(),
		b.pathLeaks(),
		b.pathAlerts(),
		b.pathMetrics(),
		b.pathPolicy(),
		b.pathResponsePolicies(),
	)
}

// onRoleScopesWidened runs after a role update allowed more scopes: existing
// keys are not widened, but a wider role is a change a reviewer should see.
func (b *apikeysBackend) onRoleScopesWidened(ctx context.Context, req *logical.Request, r *record.Role, widened []string) error {
	actor := actorFromRequest(req)
	return b.raiseAlert(ctx, req.Storage, &record.Alert{
		Type:     record.AlertRoleWidened,
		Severity: record.SeverityWarning,
		Role:     r.Name,
		Message:  "role " + r.Name + " now allows more scopes: " + scopes.Join(widened),
		Details:  map[string]string{"widened_scopes": scopes.Join(widened), "request_id": req.ID},
		RaisedBy: &actor,
	})
}

// onVerify observes every verify outcome (for alerts and metrics). It runs
// on the hot path: it never touches storage, only bounded in-memory state
// that governanceTick persists.
func (b *apikeysBackend) onVerify(in record.VerifyInput, res record.VerifyResult) {
	// The cached mount config, without touching storage; before anything
	// loaded it on this node, the defaults apply.
	b.cache.mu.RLock()
	cfg := b.cache.config
	b.cache.mu.RUnlock()
	b.gov.det.Observe(b.clock.Now(), detect.ThresholdsOf(cfg), in, res)
}
