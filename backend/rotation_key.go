package backend

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// handleDueKey does what is due for one key: hard expiry, then the end of a
// previous version's grace (adoption-aware), then rotation (only of keys that
// may rotate on their own: see record.AutoRotates). The queue may be
// stale, so the key is re-read under its locks and nothing is done that its
// stored state does not call for. On error the key is re-queued for a retry.
func (b *apikeysBackend) handleDueKey(ctx context.Context, s logical.Storage, client, name string, st *tickStats) error {
	defer b.locks.lockKey(client, name)()

	err := b.maintainKeyLocked(ctx, s, client, name, st)
	if err != nil {
		// Re-queued under the lock, so no concurrent change of the key
		// can be overwritten by this retry time.
		retry := retryAfterError
		var ue *userError
		if errors.As(err, &ue) {
			retry = retryAfterUserError
		}
		b.sched.rotation.Schedule(queueID(client, name), b.clock.Now().Add(retry))
	}
	return err
}

func (b *apikeysBackend) maintainKeyLocked(ctx context.Context, s logical.Storage, client, name string, st *tickStats) error {
	k, err := b.getKey(ctx, s, client, name)
	if err != nil {
		return err
	}
	if !record.ManagedKey(k) {
		return nil // deleted, revoked or leased since it was queued
	}
	now := b.clock.Now()

	// Hard expiry comes first: an expired key neither rotates nor waits.
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		if record.ExpiryDone(k, now) {
			return nil
		}
		return b.expireKeyLocked(ctx, s, k, now, st)
	}

	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	role, err := b.getRole(ctx, s, k.Role)
	if err != nil {
		return err
	}
	grace, maxGrace := cfg.DefaultGracePeriod, cfg.DefaultMaxGracePeriod
	if role != nil {
		grace, maxGrace = role.EffectiveGracePeriod(cfg), role.EffectiveMaxGracePeriod(cfg)
	}
	if maxGrace < grace {
		maxGrace = grace
	}

	events, alerts, changed := b.applyGrace(k, now, grace, maxGrace, st)

	// The role's current setting decides whether the key can be read back
	// (as key reads do): a key whose role turned retrievable off stops
	// keeping plaintext now, and so stops rotating on its schedule. The
	// client is read once, for this and for the rotation below.
	var c *record.Client
	if role != nil {
		if c, err = b.getClient(ctx, s, k.Client); err != nil {
			return err
		}
	}
	if k.Retrievable && role.ForbidsRetrieval(c) {
		k.StopRetrieval()
		changed = true
	}

	rotateNow := false
	// A previous version still in its grace (cut short by nothing but its
	// own end) holds the rotation back: rotating now would retire it early.
	// The rotation happens at the tick that ends that grace.
	if !k.NextRotationAt.IsZero() && !now.Before(k.NextRotationAt) && role != nil && record.AutoRotates(k) && k.VersionByState(record.StatePrevious) == nil {
		pol := role.RotationPolicy(cfg)
		if pol.InWindow(k.NextRotationAt, now) {
			rotateNow = true
		} else {
			// The window was missed (e.g. Vault was down): wait for the
			// next scheduled time rather than rotate at an unexpected one.
			missed := k.NextRotationAt
			k.NextRotationAt = pol.Next(now)
			changed = true
			a := keyAlert(k, record.AlertRotationOverdue, 0, "the scheduled rotation missed its rotation_window; it waits for the next scheduled time")
			a.Details = map[string]string{
				"reason":           "rotation_window_missed",
				"scheduled_at":     missed.Format(time.RFC3339),
				"rotation_window":  pol.EffectiveWindow().String(),
				"next_rotation_at": k.NextRotationAt.Format(time.RFC3339),
			}
			alerts = append(alerts, a)
		}
	}

	// A rotation stores the grace changes above with the new version in
	// one commit, logging them before key.rotated (actor system);
	// otherwise only the changes are stored.
	if rotateNow {
		if _, err := b.rotateLoadedLocked(ctx, nil, s, k, role, c, cfg, false, events); err != nil {
			return err
		}
	} else if changed {
		if err := b.commitKey(ctx, s, k, nil, events...); err != nil {
			return err
		}
	}
	for _, a := range alerts {
		// raiseAlert lists it at alerts/ and logs it (alert.raised).
		if err := b.raiseAlert(ctx, s, a); err != nil {
			return err
		}
	}
	if rotateNow {
		st.rotated++ // the key is already re-scheduled
		return nil
	}
	if !k.NextRotationAt.IsZero() && !now.Before(k.NextRotationAt) && role == nil && record.AutoRotates(k) {
		return userErrorf("role %q of key %s/%s no longer exists; the key cannot rotate until the role is re-created or the key revoked", k.Role, client, name)
	}
	// The tick popped the key: it goes back at its due time even when
	// nothing above was written (a commit has scheduled it already). That
	// due time may have moved without a commit (the early adoption check
	// passed): its pointer is written, and noted on the record, first.
	moved, err := b.sched.index(ctx, s, k)
	if err != nil {
		return err
	}
	if moved {
		if err := b.putKey(ctx, s, k); err != nil {
			return err
		}
	}
	b.sched.update(k)
	return nil
}

// applyGrace handles previous versions whose grace ends: it extends the
// grace of a version the client still uses while the new one was never
// verified (alerting once), and retires the rest. It returns the events to
// log, the alerts to raise and whether k changed.
func (b *apikeysBackend) applyGrace(k *record.Key, now time.Time, grace, maxGrace time.Duration, st *tickStats) ([]eventlog.Event, []*record.Alert, bool) {
	r := &b.rot
	var events []eventlog.Event
	var alerts []*record.Alert
	changed := false
	active := k.Current()
	for _, p := range k.Versions {
		if p.State != record.StatePrevious {
			continue
		}
		in := record.AdoptionInput{Grace: grace, MaxGrace: maxGrace, PreviousSeen: r.adoption(k, p.Version)}
		if active != nil {
			in.ActiveSeen = r.adoption(k, active.Version)
		}
		d := record.DecideGrace(k, p, now, in)
		if d.Action != record.GraceExtend {
			continue
		}
		oldEnd := p.GraceEndsAt
		p.GraceEndsAt = d.NewEnd
		changed = true
		st.deferred++
		if !d.First {
			continue
		}
		// The decision and the alert are logged once per rotation.
		limit := active.ActivatedAt.Add(maxGrace)
		wait := eventFor(nil, eventlog.KeyRetirementDeferred, k, p.Version)
		wait.Details = map[string]string{
			"reason":           "new version not yet verified while the previous one is still in use",
			"active_version":   strconv.Itoa(active.Version),
			"grace_ends_at":    p.GraceEndsAt.Format(time.RFC3339),
			"waits_until":      limit.Format(time.RFC3339),
			"max_grace_period": maxGrace.String(),
		}
		if refusedFrom := oldEnd.Add(record.RetirementDecisionBound); now.After(refusedFrom) {
			// Decided by a tick long after the grace ended (failover,
			// seal): verify held the version only up to the bound and
			// refused it from then until now.
			wait.Details["refused_since"] = refusedFrom.Format(time.RFC3339)
		}
		a := keyAlert(k, record.AlertRotationNotAdopted, active.Version, "the rotated key has not been used yet while the previous version still is; retirement of the previous version waits (up to max_grace_period): update the client's configuration")
		a.Details = map[string]string{
			"previous_version": strconv.Itoa(p.Version),
			"waits_until":      limit.Format(time.RFC3339),
		}
		events = append(events, wait)
		alerts = append(alerts, a)
	}
	if retired := k.RetireExpiredGrace(now); len(retired) > 0 {
		changed = true
		st.retired += len(retired)
		events = append(events, retiredEvents(nil, k, retired)...)
	}
	return events, alerts, changed
}

// keyAlert starts an alert about key k raised by background work.
func keyAlert(k *record.Key, typ string, version int, msg string) *record.Alert {
	return &record.Alert{Type: typ, Severity: record.SeverityWarning, Message: msg,
		Client: k.Client, Key: k.Name, KeyID: k.KeyID, Role: k.Role, Version: version}
}

// expireKeyLocked handles a key past its hard expiry: verify already rejects
// it (it checks expires_at itself); here the previous version's remaining
// grace is cut, rotation stops, the stored plaintexts (no longer of use) are
// dropped and the expiry is logged.
func (b *apikeysBackend) expireKeyLocked(ctx context.Context, s logical.Storage, k *record.Key, now time.Time, st *tickStats) error {
	var retired []int
	var rs []record.Retirement
	for _, v := range k.Versions {
		if v.State == record.StatePrevious {
			v.State, v.RetiredAt = record.StateRetired, now
			retired = append(retired, v.Version)
			rs = append(rs, record.Retirement{Version: v.Version, Reason: record.RetiredExpired})
		}
		v.Secret = ""
	}
	k.NextRotationAt = time.Time{}
	version := 0
	if cur := k.Current(); cur != nil {
		version = cur.Version
	}
	ev := eventFor(nil, eventlog.KeyExpired, k, version)
	ev.Details = map[string]string{"expires_at": k.ExpiresAt.Format(time.RFC3339)}
	if len(retired) > 0 {
		ev.Details["retired_versions"] = joinInts(retired)
	}
	if err := b.commitKey(ctx, s, k, nil, append([]eventlog.Event{ev}, retiredEvents(nil, k, rs)...)...); err != nil {
		return err
	}
	st.expired++
	return nil
}
