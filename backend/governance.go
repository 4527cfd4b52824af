package backend

import (
	"context"
	"errors"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// Governance (SPEC §6, §7): approvals, lock-down, revocation lists, leaks,
// stale keys, alerts, metrics and the public key policy.

// govRuntime is the node-local, in-memory side of governance.
type govRuntime struct {
	// det finds suspicious verify traffic; it owns its lock.
	det *detect.Detector
	// persistMu serialises writes of alerts and of the governance state
	// (the periodic tick and flushes triggered by reading alerts).
	persistMu sync.Mutex

	// walker is the position of the incremental key sweep
	// (governance_sweep.go); guarded by persistMu.
	walker keyWalker
	// sweepBatch overrides the sweepBatch constant when positive (tests).
	sweepBatch int
	// alerts counts open alerts and prunes old ones (alerts_open.go).
	alerts alertsRuntime
}

// batch is the most keys one tick's sweep visits.
func (g *govRuntime) batch() int {
	if g.sweepBatch > 0 {
		return g.sweepBatch
	}
	return sweepBatch
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

// governanceTick runs background governance work: it persists the alerts
// detected by verify since the last tick, sweeps the next batch of keys
// (revoking idle ones, flagging those due for review or overdue for
// rotation), and folds new lifecycle-log entries into the persisted
// metrics. Its cost is bounded by the batch and the new log entries, not
// by the number of keys.
func (b *apikeysBackend) governanceTick(ctx context.Context, req *logical.Request) error {
	s := req.Storage
	b.gov.persistMu.Lock()
	defer b.gov.persistMu.Unlock()
	st, err := loadGovState(ctx, s)
	if err != nil {
		return err
	}
	errFlush := b.flushDetectionsLocked(ctx, s, st)
	_, errSweep := b.sweepKeys(ctx, s, st)
	errLog := b.foldLog(ctx, s, st)
	errPrune := b.pruneAlerts(ctx, s, st)
	return errors.Join(errFlush, errSweep, errLog, errPrune, saveGovState(ctx, s, st))
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
