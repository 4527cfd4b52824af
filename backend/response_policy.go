package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Automated response policies (SPEC §9): for the alerts a policy selects,
// an action taken by "system" (lock the client, revoke or rotate the key,
// lock the client until an approved unlock), within the policy's rate cap.
//
// Storage:
//   - responses/policies/<name>: the policy (record.ResponsePolicy);
//   - responses/caps/<name>: its rate-cap bookkeeping (record.ResponseCap);
//   - responses/handled/<alert id>: what was decided for one alert and how
//     far it got (responseHandled), kept for responseHandledRetention.
const (
	storageResponsePolicyPrefix  = "responses/policies/"
	storageResponseCapPrefix     = "responses/caps/"
	storageResponseHandledPrefix = "responses/handled/"
)

// responseHandledRetention is how long the record of an alert's handling
// is kept. The caller (the outbox following the lifecycle log) may call
// again for an alert after a crash or restart; an alert older than this is
// not acted on at all, so a forgotten record can never make an action
// repeat.
const responseHandledRetention = 7 * record.Day

// responseHandledPruneEvery spaces the pruning of old handled records on
// one node: each pruning lists them.
const responseHandledPruneEvery = time.Hour

func responsePolicyStorageKey(name string) string { return storageResponsePolicyPrefix + name }
func responseCapStorageKey(name string) string    { return storageResponseCapPrefix + name }
func responseHandledStorageKey(id string) string  { return storageResponseHandledPrefix + id }

// responseEngine is this node's side of the response engine.
type responseEngine struct {
	// mu serialises the handling of alerts with each other and with
	// policy writes, so a policy's rate-cap bookkeeping and an alert's
	// handled record are read-modify-written by one at a time (lock
	// order: locks.go).
	mu sync.Mutex
	// lastPrune is when this node last pruned handled records; guarded by mu.
	lastPrune time.Time
}

// responsePolicyCache holds the policies in memory, so an alert no policy
// selects costs no storage read. A write on this node and an invalidation
// from another drop it (mountCache.invalidate); the generation keeps a
// load that raced with a drop from storing what it read before the write.
type responsePolicyCache struct {
	mu     sync.Mutex
	gen    uint64
	loaded bool
	list   []*record.ResponsePolicy
}

func (c *responsePolicyCache) get() (list []*record.ResponsePolicy, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.list, c.gen, c.loaded
}

func (c *responsePolicyCache) set(gen uint64, list []*record.ResponsePolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.list, c.loaded = list, true
	}
}

func (c *responsePolicyCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.list, c.loaded = nil, false
}

func getResponsePolicy(ctx context.Context, s logical.Storage, name string) (*record.ResponsePolicy, error) {
	return getJSON[record.ResponsePolicy](ctx, s, responsePolicyStorageKey(name), fmt.Sprintf("response policy %q", name))
}

// responsePolicies returns every policy, sorted by name, from the cache.
func (b *apikeysBackend) responsePolicies(ctx context.Context, s logical.Storage) ([]*record.ResponsePolicy, error) {
	list, gen, ok := b.cache.responses.get()
	if ok {
		return list, nil
	}
	names, err := s.List(ctx, storageResponsePolicyPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	list = make([]*record.ResponsePolicy, 0, len(names))
	for _, n := range names {
		p, err := getResponsePolicy(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if p != nil {
			list = append(list, p)
		}
	}
	b.cache.responses.set(gen, list)
	return list, nil
}

// responseHandled records what was decided for one alert (its steps, in
// the order they run) and which steps are done.
type responseHandled struct {
	AlertID string         `json:"alert_id"`
	At      time.Time      `json:"at"`
	Steps   []responseStep `json:"steps"`
}

// responseStep is one policy's action on one alert.
type responseStep struct {
	Policy string `json:"policy"`
	Action string `json:"action"`
	// Capped: the policy's rate cap kept it from acting; CapRule says
	// what the cap was ("2 per 1h0m0s") and CapAlertID is the id of the
	// rate-capped alert the step raises, if one is due.
	Capped     bool   `json:"capped,omitempty"`
	CapRule    string `json:"cap_rule,omitempty"`
	CapAlertID string `json:"cap_alert_id,omitempty"`
	// BaseVersion is the key's latest version when a rotation was
	// decided: a key past it was rotated already, by this step before
	// an interruption or by someone else, and is not rotated again.
	BaseVersion int  `json:"base_version,omitempty"`
	Done        bool `json:"done,omitempty"`
}

// respondToAlert applies the response policies to alert a (as stored).
// The outbox calls it at least once per raised alert, from a background
// goroutine (no request: the actor is system). It returns an error only
// for storage failures (the caller retries later); a policy that cannot
// act (key gone, client already locked) is not an error.
//
// Idempotency: the first call decides the steps (which policies act,
// which are capped) and stores them at responses/handled/<alert id>
// before acting; each step is marked done once it has acted and logged.
// A repeated call runs only the steps not done. A step interrupted after
// acting runs again: a lock or revoke finds it done already, and a
// rotation is recognised by the key's version being past the one recorded
// when it was decided (its response.executed entry is committed with the
// new version), so nothing is done twice; the repeated step only logs a
// second response.executed entry saying "already_locked",
// "already_revoked" or "already_rotated".
func (b *apikeysBackend) respondToAlert(ctx context.Context, s logical.Storage, a *record.Alert) error {
	if a == nil || a.Type == record.AlertResponseRateCapped {
		return nil // the engine's own alerts never trigger a response
	}
	pols, err := b.responsePolicies(ctx, s)
	if err != nil {
		return err
	}
	var selected []*record.ResponsePolicy
	for _, p := range pols {
		if p.Selects(a) && record.ResponseApplies(p.Action, a) {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return nil
	}
	now := b.clock.Now()
	if !a.Time.IsZero() && now.Sub(a.Time) > responseHandledRetention {
		b.logger.Warn("automated responses skipped for an alert older than the handled-record retention", "alert_id", a.ID, "retention", responseHandledRetention.String())
		return nil
	}
	b.responses.mu.Lock()
	defer b.responses.mu.Unlock()
	h, err := getJSON[responseHandled](ctx, s, responseHandledStorageKey(a.ID), "responses of alert "+a.ID)
	if err != nil {
		return err
	}
	if h == nil {
		if h, err = b.planResponses(ctx, s, a, selected, now); err != nil {
			return err
		}
	}
	for i := range h.Steps {
		st := &h.Steps[i]
		if st.Done {
			continue
		}
		if err := b.runResponseStep(ctx, s, a, st); err != nil {
			return err
		}
		st.Done = true
		if err := putJSON(ctx, s, responseHandledStorageKey(a.ID), "responses of alert "+a.ID, h); err != nil {
			return err
		}
	}
	if err := b.pruneResponsesHandled(ctx, s, now); err != nil {
		b.logger.Warn("could not prune old records of automated responses; retried later", "error", err)
	}
	return nil
}

// planResponses decides the steps for alert a and stores them, then the
// rate-cap bookkeeping they consumed. Each distinct action is taken once:
// by the first selecting policy (by name) whose rate cap allows it. When
// none allows it, every selecting policy of that action is recorded as
// capped, and each raises one rate-capped alert per window.
//
// The handled record is stored first: a crash before the caps are stored
// leaves this alert's actions uncounted (one over the cap at most per
// crash), never counted twice.
func (b *apikeysBackend) planResponses(ctx context.Context, s logical.Storage, a *record.Alert, selected []*record.ResponsePolicy, now time.Time) (*responseHandled, error) {
	h := &responseHandled{AlertID: a.ID, At: now}
	caps := map[string]*record.ResponseCap{}
	capOf := func(name string) (*record.ResponseCap, error) {
		if c, ok := caps[name]; ok {
			return c, nil
		}
		c, err := getJSON[record.ResponseCap](ctx, s, responseCapStorageKey(name), fmt.Sprintf("rate cap of response policy %q", name))
		if c == nil && err == nil {
			c = &record.ResponseCap{}
		}
		caps[name] = c
		return c, err
	}
	dirty := map[string]bool{}
	for _, action := range record.ResponseActions {
		var cands []*record.ResponsePolicy
		for _, p := range selected {
			if p.Action == action {
				cands = append(cands, p)
			}
		}
		took := false
		for _, p := range cands {
			c, err := capOf(p.Name)
			if err != nil {
				return nil, err
			}
			if c.Take(now, p.MaxActions, p.Window) {
				st := responseStep{Policy: p.Name, Action: action}
				if action == record.ResponseRotateKey {
					k, err := b.getKey(ctx, s, a.Client, a.Key)
					if err != nil {
						return nil, err
					}
					if k != nil {
						st.BaseVersion = k.LatestVersion()
					}
				}
				h.Steps = append(h.Steps, st)
				dirty[p.Name], took = true, true
				break
			}
		}
		if took {
			continue
		}
		for _, p := range cands {
			c := caps[p.Name]
			st := responseStep{Policy: p.Name, Action: action, Capped: true,
				CapRule: strconv.Itoa(p.MaxActions) + " per " + p.Window.String()}
			if c.CappedAlertDue(now, p.Window) {
				id, err := governance.NewAlertID(now)
				if err != nil {
					return nil, err
				}
				st.CapAlertID, c.CappedAlertAt = id, now
				dirty[p.Name] = true
			}
			h.Steps = append(h.Steps, st)
		}
	}
	if err := putJSON(ctx, s, responseHandledStorageKey(a.ID), "responses of alert "+a.ID, h); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(dirty))
	for n := range dirty {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := putJSON(ctx, s, responseCapStorageKey(n), "rate cap of response policy "+n, caps[n]); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// responseReason is the reason an automated action records on what it
// changes (client.locked, key.revoked), naming the policy and the alert.
func responseReason(st *responseStep, a *record.Alert) string {
	return "automated response " + st.Policy + " to alert " + a.ID
}

// responseEvent is the response.executed or response.skipped entry of one
// step on alert a.
func responseEvent(typ string, a *record.Alert, st *responseStep) eventlog.Event {
	ev := systemEvent(typ)
	ev.Client, ev.Key, ev.KeyID, ev.Role = a.Client, a.Key, a.KeyID, a.Role
	ev.Details = map[string]string{"alert_id": a.ID, "alert_type": a.Type, "policy": st.Policy, "action": st.Action}
	return ev
}

// runResponseStep takes one step's action, or records that its rate cap
// kept it from acting, and logs it.
func (b *apikeysBackend) runResponseStep(ctx context.Context, s logical.Storage, a *record.Alert, st *responseStep) error {
	if st.Capped {
		return b.skipCappedStep(ctx, s, a, st)
	}
	var outcome string
	var err error
	switch st.Action {
	case record.ResponseLockClient, record.ResponseRequireReapproval:
		outcome, err = b.respondLock(ctx, s, a, st)
	case record.ResponseRevokeKey:
		outcome, err = b.respondRevoke(ctx, s, a, st)
	case record.ResponseRotateKey:
		var logged bool
		if outcome, logged, err = b.respondRotate(ctx, s, a, st); err == nil && logged {
			b.logger.Info("automated response", "policy", st.Policy, "action", st.Action, "alert_id", a.ID, "outcome", outcome)
			return nil
		}
	default:
		outcome = "skipped: unknown action"
	}
	if err != nil {
		return err
	}
	ev := responseEvent(eventlog.ResponseExecuted, a, st)
	ev.Details["outcome"] = outcome
	if err := b.log.Append(ctx, s, ev); err != nil {
		return err
	}
	b.logger.Info("automated response", "policy", st.Policy, "action", st.Action, "alert_id", a.ID, "client", a.Client, "key_id", a.KeyID, "outcome", outcome)
	return nil
}

// skipCappedStep raises the rate-capped alert the step is due (once: its
// id was chosen when the step was decided) and logs response.skipped.
func (b *apikeysBackend) skipCappedStep(ctx context.Context, s logical.Storage, a *record.Alert, st *responseStep) error {
	if st.CapAlertID != "" {
		existing, err := getAlert(ctx, s, st.CapAlertID)
		if err != nil {
			return err
		}
		if existing == nil {
			capped := &record.Alert{
				ID: st.CapAlertID, Type: record.AlertResponseRateCapped, Severity: record.SeverityCritical,
				Client: a.Client, Key: a.Key, KeyID: a.KeyID, Role: a.Role,
				Message: "automated response policy " + st.Policy + " reached its rate cap (" + st.CapRule + "): " + st.Action +
					" was not done for alert " + a.ID + " nor for further alerts in this window; check what is raising them and act by hand",
				Details: map[string]string{"policy": st.Policy, "action": st.Action, "alert_id": a.ID, "cap": st.CapRule},
			}
			if err := b.raiseAlert(ctx, s, capped); err != nil {
				return err
			}
		}
	}
	ev := responseEvent(eventlog.ResponseSkipped, a, st)
	ev.Details["reason"] = "rate cap"
	ev.Details["cap"] = st.CapRule
	if st.CapAlertID != "" {
		ev.Details["rate_capped_alert_id"] = st.CapAlertID
	}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return err
	}
	b.logger.Warn("automated response skipped: rate cap", "policy", st.Policy, "action", st.Action, "alert_id", a.ID, "cap", st.CapRule)
	return nil
}

// skippedBy is the outcome of an action refused with a user error (the
// client de-provisioned, the key revoked or leased), or "" and the error
// for any other failure.
func skippedBy(err error) (string, error) {
	var ue *userError
	if errors.As(err, &ue) {
		return "skipped: " + ue.msg, nil
	}
	return "", err
}

// respondLock locks the alert's client (lock_client), and for
// require_reapproval makes it unlock only with an approved request.
func (b *apikeysBackend) respondLock(ctx context.Context, s logical.Storage, a *record.Alert, st *responseStep) (string, error) {
	reapprove := st.Action == record.ResponseRequireReapproval
	res, err := b.changeClientStatus(ctx, nil, s, a.Client, clientStatusChange{
		status: record.ClientLocked, reason: responseReason(st, a), alertID: a.ID, requireApproval: reapprove,
	})
	if err != nil {
		return skippedBy(err)
	}
	switch {
	case res.client == nil:
		return "skipped: client does not exist", nil
	case res.flagged:
		return "already_locked; unlock now requires approval", nil
	case res.unchanged:
		return "already_locked", nil
	case reapprove:
		return "locked; unlock requires approval", nil
	}
	return "locked", nil
}

// respondRevoke revokes the alert's key as a whole.
func (b *apikeysBackend) respondRevoke(ctx context.Context, s logical.Storage, a *record.Alert, st *responseStep) (string, error) {
	defer b.locks.lockKey(a.Client, a.Key)()
	k, err := b.getKey(ctx, s, a.Client, a.Key)
	switch {
	case err != nil:
		return "", err
	case k == nil:
		return "skipped: key does not exist", nil
	case a.KeyID != "" && k.KeyID != a.KeyID:
		return "skipped: the key was replaced since the alert (its key_id differs)", nil
	case k.Revoked:
		return "already_revoked", nil
	}
	if _, err := b.revokeLoadedKeyLocked(ctx, nil, s, k, 0, responseReason(st, a)); err != nil {
		return skippedBy(err)
	}
	return "revoked", nil
}

// respondRotate rotates the alert's key now, as the rotation schedule
// would: only a key its owner can read back (record.AutoRotates), since
// nobody would get the new secret of another. Its response.executed entry
// is committed with the rotation (logged reports that).
func (b *apikeysBackend) respondRotate(ctx context.Context, s logical.Storage, a *record.Alert, st *responseStep) (outcome string, logged bool, err error) {
	defer b.locks.lockKey(a.Client, a.Key)()
	k, role, c, cfg, err := b.loadKeyForRotation(ctx, s, a.Client, a.Key)
	if err != nil {
		outcome, err = skippedBy(err)
		return outcome, false, err
	}
	switch {
	case a.KeyID != "" && k.KeyID != a.KeyID:
		return "skipped: the key was replaced since the alert (its key_id differs)", false, nil
	case k.LatestVersion() > st.BaseVersion:
		return "already_rotated", false, nil
	case !record.AutoRotates(k):
		return "skipped: the key is not retrievable, so its owner could not read a new secret; rotate it by hand with keys/" + k.Client + "/" + k.Name + "/rotate", false, nil
	}
	outcome = "rotated to version " + strconv.Itoa(k.LatestVersion()+1)
	ev := responseEvent(eventlog.ResponseExecuted, a, st)
	ev.Details["outcome"] = outcome
	if _, err := b.rotateLoadedLocked(ctx, nil, s, k, role, c, cfg, false, []eventlog.Event{ev}); err != nil {
		outcome, err = skippedBy(err)
		return outcome, false, err
	}
	return outcome, true, nil
}

// pruneResponsesHandled deletes handled records older than their
// retention, at most once per responseHandledPruneEvery on this node. The
// caller holds responses.mu.
func (b *apikeysBackend) pruneResponsesHandled(ctx context.Context, s logical.Storage, now time.Time) error {
	if !b.responses.lastPrune.IsZero() && now.Sub(b.responses.lastPrune) < responseHandledPruneEvery {
		return nil
	}
	b.responses.lastPrune = now
	ids, err := s.List(ctx, storageResponseHandledPrefix)
	if err != nil {
		return err
	}
	sort.Strings(ids) // alert ids sort by time
	before := now.Add(-responseHandledRetention)
	for _, id := range ids {
		if !governance.RaisedBefore(id, before) {
			break
		}
		if err := s.Delete(ctx, responseHandledStorageKey(id)); err != nil {
			return err
		}
	}
	return nil
}
