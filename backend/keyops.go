package backend

import (
	"context"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Key operations shared by the API handlers and background work. req is nil
// for background work, which is then attributed to "system".

func eventFor(req *logical.Request, typ string, k *record.Key, version int) eventlog.Event {
	ev := systemEvent(typ)
	if req != nil {
		ev = eventFromRequest(req, typ)
	}
	ev.Client, ev.Key, ev.KeyID, ev.Role, ev.Version = k.Client, k.Name, k.KeyID, k.Role, version
	return ev
}

// rotateResult is what a rotation produced.
type rotateResult struct {
	key       *record.Key
	version   *record.KeyVersion
	plaintext string
}

// loadKeyForRotation loads what a rotation of a key needs: the key, its
// role, its client and the config. The caller holds the key's lock.
func (b *apikeysBackend) loadKeyForRotation(ctx context.Context, s logical.Storage, client, name string) (*record.Key, *record.Role, *record.Client, *record.Config, error) {
	k, role, cfg, err := b.loadKeyForChange(ctx, s, client, name)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, err := b.getClient(ctx, s, client)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return k, role, c, cfg, nil
}

// rotateLoadedLocked adds a new version to k, a managed key the caller has
// loaded under the key lock with its role and client c (and may have
// changed, as the rotation tick
// does when a grace ends in the same tick), and stores everything in one
// WAL-protected commit with the log entries of the caller's changes
// (before) followed by the rotation's own.
func (b *apikeysBackend) rotateLoadedLocked(ctx context.Context, req *logical.Request, s logical.Storage, k *record.Key, role *record.Role, c *record.Client, cfg *record.Config, stage bool, before []eventlog.Event) (*rotateResult, error) {
	if c == nil || c.Status == record.ClientDeprovisioned {
		return nil, userErrorf("client %q is de-provisioned; its keys cannot rotate", k.Client)
	}
	if k.Retrievable && role.ForbidsRetrieval(c) {
		// The role no longer lets its keys be read back: stop keeping
		// plaintext, for the new version and the ones already stored.
		k.StopRetrieval()
	}
	now := b.clock.Now()
	plaintext, hmacHex, err := b.generateKey(ctx, s, cfg, k.Environment)
	if err != nil {
		return nil, err
	}
	nv := &record.KeyVersion{Version: k.LatestVersion() + 1, HMAC: hmacHex, CreatedAt: now, ApprovalID: k.NextApproval}
	k.NextApproval = ""
	if k.Retrievable {
		nv.Secret = plaintext
	}
	typ := eventlog.KeyRotated
	var retired []record.Retirement
	if stage {
		if err := k.Stage(nv); err != nil {
			return nil, &userError{msg: err.Error()}
		}
		typ = eventlog.KeyStaged
	} else {
		k.Versions = append(k.Versions, nv)
		retired = k.Activate(nv, now, role.EffectiveGracePeriod(cfg))
		k.NextRotationAt = role.RotationPolicy(cfg).Next(now)
	}
	ev := eventFor(req, typ, k, nv.Version)
	if !stage {
		ev.Details = map[string]string{"grace_period": role.EffectiveGracePeriod(cfg).String()}
	}
	if nv.ApprovalID != "" {
		if ev.Details == nil {
			ev.Details = map[string]string{}
		}
		ev.Details["approval_id"] = nv.ApprovalID
	}
	events := append(append(before, ev), retiredEvents(req, k, retired)...)
	if err := b.commitKey(ctx, s, k, []*record.KeyVersion{nv}, events...); err != nil {
		return nil, err
	}
	return &rotateResult{key: k, version: nv, plaintext: plaintext}, nil
}

// loadKeyForChange loads a key that an operation is about to change,
// refusing keys that are revoked or missing. The caller holds the key lock.
func (b *apikeysBackend) loadKeyForChange(ctx context.Context, s logical.Storage, client, name string) (*record.Key, *record.Role, *record.Config, error) {
	k, err := b.getKey(ctx, s, client, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if k == nil {
		return nil, nil, nil, userErrorf("key %s/%s does not exist", client, name)
	}
	if k.Revoked {
		return nil, nil, nil, userErrorf("key %s/%s is revoked; re-issue it under the same name by writing role=<role> to keys/%s/%s", client, name, client, name)
	}
	if k.Leased {
		return nil, nil, nil, userErrorf("key %s/%s is a leased key; it is managed through its Vault lease", client, name)
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	role, err := b.getRole(ctx, s, k.Role)
	if err != nil {
		return nil, nil, nil, err
	}
	if role == nil {
		return nil, nil, nil, userErrorf("role %q of key %s/%s no longer exists", k.Role, client, name)
	}
	return k, role, cfg, nil
}

// promoteKey makes the pending version active.
func (b *apikeysBackend) promoteKey(ctx context.Context, req *logical.Request, client, name string) (*record.Key, *record.KeyVersion, error) {
	return b.changeKey(ctx, req, client, name, eventlog.KeyPromoted, func(k *record.Key, role *record.Role, cfg *record.Config) (*record.KeyVersion, []record.Retirement, error) {
		now := b.clock.Now()
		v, retired, err := k.Promote(now, role.EffectiveGracePeriod(cfg))
		if err == nil {
			k.NextRotationAt = role.RotationPolicy(cfg).Next(now)
		}
		return v, retired, err
	})
}

// rollbackKey reactivates the previous version.
func (b *apikeysBackend) rollbackKey(ctx context.Context, req *logical.Request, client, name string) (*record.Key, *record.KeyVersion, error) {
	return b.changeKey(ctx, req, client, name, eventlog.KeyRolledBack, func(k *record.Key, role *record.Role, cfg *record.Config) (*record.KeyVersion, []record.Retirement, error) {
		return k.Rollback(b.clock.Now(), role.EffectiveGracePeriod(cfg))
	})
}

// changeKey runs a state transition that adds no version under the locks,
// then stores the key and logs the event, with a key.retired entry for each
// version the transition retired.
func (b *apikeysBackend) changeKey(ctx context.Context, req *logical.Request, client, name, typ string, change func(*record.Key, *record.Role, *record.Config) (*record.KeyVersion, []record.Retirement, error)) (*record.Key, *record.KeyVersion, error) {
	defer b.locks.lockKey(client, name)()
	s := req.Storage
	k, role, cfg, err := b.loadKeyForChange(ctx, s, client, name)
	if err != nil {
		return nil, nil, err
	}
	v, retired, err := change(k, role, cfg)
	if err != nil {
		return nil, nil, &userError{msg: err.Error()}
	}
	events := append([]eventlog.Event{eventFor(req, typ, k, v.Version)}, retiredEvents(req, k, retired)...)
	if err := b.commitKey(ctx, s, k, nil, events...); err != nil {
		return nil, nil, err
	}
	return k, v, nil
}

// revokeKey revokes one version (version > 0) or the whole key. It returns
// nil if the key does not exist.
func (b *apikeysBackend) revokeKey(ctx context.Context, req *logical.Request, client, name string, version int, reason string) (*record.Key, []int, error) {
	defer b.locks.lockKey(client, name)()
	return b.revokeKeyLocked(ctx, req, req.Storage, client, name, version, reason)
}

// revokeKeyIdempotent is revokeKey for the revoke endpoint: it also
// reports whether the request changed nothing because what it names was
// revoked already, so the operator can be told rather than see a silent
// success.
func (b *apikeysBackend) revokeKeyIdempotent(ctx context.Context, req *logical.Request, client, name string, version int, reason string) (k *record.Key, revoked []int, unchanged bool, err error) {
	defer b.locks.lockKey(client, name)()
	k, err = b.getKey(ctx, req.Storage, client, name)
	if err != nil || k == nil {
		return nil, nil, false, err
	}
	wasRevoked := k.Revoked
	revoked, err = b.revokeLoadedKeyLocked(ctx, req, req.Storage, k, version, reason)
	if err != nil {
		return nil, nil, false, err
	}
	// Nothing changed iff no version was revoked now and the key's own
	// revocation is as it was (a whole-key revoke of a live key always
	// changes it, even when every version was retired).
	return k, revoked, len(revoked) == 0 && k.Revoked == wasRevoked, nil
}

func (b *apikeysBackend) revokeKeyLocked(ctx context.Context, req *logical.Request, s logical.Storage, client, name string, version int, reason string) (*record.Key, []int, error) {
	k, err := b.getKey(ctx, s, client, name)
	if err != nil || k == nil {
		return nil, nil, err
	}
	revoked, err := b.revokeLoadedKeyLocked(ctx, req, s, k, version, reason)
	return k, revoked, err
}

// revokeLoadedKeyLocked is revokeKeyLocked for a caller that already read
// the key under its locks. Revocation is idempotent, as Vault operators
// expect: revoking what is already revoked changes nothing, writes nothing
// and logs nothing, and the original time and reason stay (the caller tells
// the operator; it returns no revoked versions then).
func (b *apikeysBackend) revokeLoadedKeyLocked(ctx context.Context, req *logical.Request, s logical.Storage, k *record.Key, version int, reason string) ([]int, error) {
	client, name := k.Client, k.Name
	if k.Revoked && version == 0 {
		return nil, nil // already revoked: keep the original time and reason
	}
	if reason == "" {
		reason = "unspecified"
	}
	actor := record.Actor{Type: actorSystem}
	if req != nil {
		actor = actorFromRequest(req)
	}
	now := b.clock.Now()
	var revoked []int
	keyRevokedNow := false
	if version > 0 {
		v := k.Version(version)
		if v == nil {
			return nil, userErrorf("key %s/%s has no version %d (it has versions 1-%d; old ones may have been dropped)", client, name, version, k.LatestVersion())
		}
		if k.RevokeVersion(v, now, reason, actor) {
			revoked = []int{version}
		}
		// A key left without any version verify could accept is revoked
		// as a whole, so the inventory says what verify does. A key that
		// is revoked already keeps its own revocation time and reason.
		if !k.Revoked && k.Current() == nil && k.VersionByState(record.StatePrevious) == nil && k.VersionByState(record.StatePending) == nil {
			k.Revoked, k.RevokedAt, k.RevokeReason = true, now, reason
			k.NextRotationAt = time.Time{}
			keyRevokedNow = true
		}
		if len(revoked) == 0 && !keyRevokedNow {
			return nil, nil // the version was revoked already
		}
	} else {
		revoked = k.RevokeAll(now, reason, actor)
	}
	ev := eventFor(req, eventlog.KeyRevoked, k, version)
	ev.Details = map[string]string{"reason": reason, "versions": joinInts(revoked)}
	if keyRevokedNow {
		// Revoking this version left the key no accepted version.
		ev.Details["key_revoked"] = "true"
	}
	if err := b.commitKey(ctx, s, k, nil, ev); err != nil {
		return nil, err
	}
	b.cache.limits.KeyRevoked(k)
	return revoked, nil
}

func joinInts(list []int) string {
	out := ""
	for i, n := range list {
		if i > 0 {
			out += ","
		}
		out += strconv.Itoa(n)
	}
	return out
}

// clientStatusResult is what setClientStatus did.
type clientStatusResult struct {
	// client is the client after the change; nil when it does not exist.
	client *record.Client
	// unchanged is set when a lock or unlock found the client already in
	// that status: nothing was written or logged.
	unchanged bool
	// flagged is set when a client locked already was made to unlock
	// only with an approval (changeClientStatus, requireApproval).
	flagged bool
	// revoked counts the keys revoked now by a de-provisioning, leased
	// how many of them were leased keys.
	revoked, leased int
}

// clientStatusChange is one change of a client's status.
type clientStatusChange struct {
	status, reason string
	// alertID names the alert an automated response acts on (req nil).
	alertID string
	// requireApproval, with a lock, makes the client unlock only with an
	// approved unlock request (an automated require_reapproval response).
	requireApproval bool
	// approvalID is the approved unlock request an unlock uses.
	approvalID string
}

// setClientStatus locks, unlocks or de-provisions a client on request.
func (b *apikeysBackend) setClientStatus(ctx context.Context, req *logical.Request, name, status, reason string) (clientStatusResult, error) {
	return b.changeClientStatus(ctx, req, req.Storage, name, clientStatusChange{status: status, reason: reason})
}

// changeClientStatus locks, unlocks or de-provisions a client; req is nil
// for an automated response. De-provisioning revokes every key of the
// client. The status check happens under the client lock, so two
// concurrent locks write and log the change once.
func (b *apikeysBackend) changeClientStatus(ctx context.Context, req *logical.Request, s logical.Storage, name string, ch clientStatusChange) (clientStatusResult, error) {
	status, reason := ch.status, ch.reason
	clk := b.locks.client(name)
	clk.Lock()
	defer clk.Unlock()
	c, err := b.getClient(ctx, s, name)
	if err != nil || c == nil {
		return clientStatusResult{}, err
	}
	res := clientStatusResult{client: c}
	if c.Status == record.ClientDeprovisioned {
		if status != record.ClientDeprovisioned {
			return res, userErrorf("client %q is de-provisioned; its status cannot change", name)
		}
		// Deleting again finishes a de-provisioning that was interrupted
		// after the status write: revoking is idempotent.
		if err := b.putTombstonePointer(ctx, s, name); err != nil {
			return res, err
		}
		res.revoked, res.leased, err = b.revokeClientKeys(ctx, req, s, name)
		return res, err
	}
	details := map[string]string{"reason": reason}
	if status == record.ClientActive {
		if err := b.checkUnlockApproval(ctx, req, s, c, ch.approvalID); err != nil {
			return res, err
		}
		if c.UnlockRequiresApproval {
			details["approval_id"] = ch.approvalID
		}
	}
	if c.Status == status {
		if ch.requireApproval && !c.UnlockRequiresApproval {
			// Locked already (by hand): the lock stays as it was, and
			// only its unlock now needs an approval.
			c.UnlockRequiresApproval = true
			res.flagged = true
			return res, b.putClient(ctx, s, c)
		}
		res.unchanged = true
		return res, nil
	}
	actor := actorFromRequest(req)
	now := b.clock.Now()
	c.Status, c.StatusReason, c.StatusChangedAt, c.StatusChangedBy = status, reason, now, &actor
	c.UpdatedAt = now
	c.UnlockRequiresApproval = status == record.ClientLocked && (ch.requireApproval || c.UnlockRequiresApproval)
	if status == record.ClientDeprovisioned {
		// Before the status, so no de-provisioned client lacks one.
		if err := b.putTombstonePointer(ctx, s, name); err != nil {
			return res, err
		}
	}
	// The client record changes first: verify checks the client's status,
	// so from this write on none of its keys verifies.
	if err := b.putClient(ctx, s, c); err != nil {
		return res, err
	}
	typ := map[string]string{record.ClientLocked: eventlog.ClientLocked, record.ClientActive: eventlog.ClientUnlocked, record.ClientDeprovisioned: eventlog.ClientDeleted}[status]
	ev := systemEvent(typ)
	if req != nil {
		ev = eventFromRequest(req, typ)
	}
	ev.Client = name
	if ch.alertID != "" {
		details["alert_id"] = ch.alertID
	}
	if c.UnlockRequiresApproval {
		details["unlock_requires_approval"] = "true"
	}
	ev.Details = details
	if err := b.log.Append(ctx, s, ev); err != nil {
		return res, err
	}
	if status != record.ClientDeprovisioned {
		return res, nil
	}
	res.revoked, res.leased, err = b.revokeClientKeys(ctx, req, s, name)
	return res, err
}

// revokeClientKeys revokes every key of a de-provisioned client and returns
// how many it revoked now, and how many of those were leased. The caller
// holds the client lock exclusively.
func (b *apikeysBackend) revokeClientKeys(ctx context.Context, req *logical.Request, s logical.Storage, name string) (count, leased int, err error) {
	names, err := b.listClientKeys(ctx, s, name)
	if err != nil {
		return 0, 0, err
	}
	for _, kn := range names {
		lock := b.locks.key(name, kn)
		lock.Lock()
		k, revoked, err := b.revokeKeyLocked(ctx, req, s, name, kn, 0, "client de-provisioned")
		lock.Unlock()
		if err != nil {
			return count, leased, err
		}
		if k != nil && len(revoked) > 0 {
			count++
			if k.Leased {
				leased++
			}
		}
	}
	return count, leased, nil
}
