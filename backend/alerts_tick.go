package backend

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// overdueTolerance is how late past its due time a scheduled rotation may
// be before the key counts as overdue (the rotation tick runs about once a
// minute and may wait for a rotation_window).
const overdueTolerance = time.Hour

// flushDetections persists the alerts and verify counts buffered by
// onVerify. Reading alerts calls it, so what verify saw is listed at once
// rather than after the next periodic tick.
func (b *apikeysBackend) flushDetections(ctx context.Context, s logical.Storage) error {
	if !b.writeSafe() {
		return nil // a node that may not write leaves it to the active node's tick
	}
	b.gov.persistMu.Lock()
	defer b.gov.persistMu.Unlock()
	st, err := loadGovState(ctx, s)
	if err != nil {
		return err
	}
	if err := b.flushDetectionsLocked(ctx, s, st); err != nil {
		return err
	}
	return saveGovState(ctx, s, st)
}

// flushDetectionsLocked moves the detector's buffers into storage and st.
// The caller holds persistMu and saves st.
func (b *apikeysBackend) flushDetectionsLocked(ctx context.Context, s logical.Storage, st *govState) error {
	alerts, outcomes, dropped := b.gov.det.Drain()
	for k, v := range outcomes {
		st.Verify[k] += v
	}
	st.DroppedAlerts += uint64(dropped)
	for i, a := range alerts {
		if err := b.raiseAlert(ctx, s, a); err != nil {
			// The failed one too: its count would be lost otherwise. A
			// retry is safe, as its id is set: the put rewrites the same
			// entry, and the log entry is appended by the retry only if
			// this attempt failed before appending it (the last step).
			b.gov.det.Requeue(alerts[i:])
			return err
		}
	}
	return nil
}

// sweepWarnLimit is how many failed keys one tick logs one by one; the
// rest are counted in one summary line, so a storage outage does not
// write a warning per key of the batch.
const sweepWarnLimit = 10

// sweepKeys runs one step of the background sweep over all keys (see
// governance_sweep.go): it visits at most the sweep batch of keys after
// st.Sweep, revokes keys idle for their role's idle_timeout, and raises one
// alert per key that is due for review (unused for the mount's
// review_period) or overdue for rotation. It returns how many keys it
// visited.
//
// A key that cannot be handled (its record or marks unreadable or
// undecodable, an alert or revocation not stored) is logged as a warning
// and skipped: the cursor moves past it, so one bad entry cannot stop the
// sweep of every key after it, and the next pass visits it again. What it
// got done is kept (sweepKey marks an alert right after raising it), and
// what it did not is redone then: nothing is recorded as done for it. A
// failed listing, or the tick's context ending (the node stepping down),
// ends the tick with an error and leaves the cursor before the key it was
// on, so the next tick resumes there and skips nothing.
func (b *apikeysBackend) sweepKeys(ctx context.Context, s logical.Storage, st *govState) (int, error) {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return 0, err
	}
	now := b.clock.Now()
	roleOf := memoByName(func(name string) (*record.Role, error) { return b.getRole(ctx, s, name) })
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, s, name) })
	w := &b.gov.walker
	if err := w.seek(ctx, s, st.Sweep); err != nil {
		return 0, err
	}
	fromStart := st.Sweep.atStart()
	visited, limit, failed := 0, b.gov.batch(), 0
	defer func() {
		if failed > sweepWarnLimit {
			b.logger.Warn("governance sweep skipped keys it could not handle; they are retried in the next pass", "skipped", failed, "logged", sweepWarnLimit)
		}
	}()
	for visited < limit {
		client, name, ok, err := w.next(ctx, s)
		if err != nil {
			return visited, err
		}
		if !ok {
			st.Sweep = sweepCursor{}
			if fromStart || visited > 0 {
				break // a pass never wraps within a tick: no key twice a tick
			}
			// The previous tick stopped on the last key: start the new
			// pass now rather than spend a tick on nothing.
			fromStart = true
			if err := w.seek(ctx, s, st.Sweep); err != nil {
				return visited, err
			}
			continue
		}
		visited++
		keyID := ""
		k, err := b.getKey(ctx, s, client, name)
		if err == nil && k != nil {
			keyID = k.KeyID
			err = b.sweepKey(ctx, s, st, cfg, now, roleOf, clientOf, k)
			if err == nil {
				err = b.dropUnreadablePlaintext(ctx, s, roleOf, clientOf, k)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return visited, err
			}
			failed++
			if failed <= sweepWarnLimit {
				b.logger.Warn("governance sweep could not handle a key; skipped until the next pass", "client", client, "key", name, "key_id", keyID, "error", redactDecodeError(err))
			}
		}
		st.Sweep = sweepCursor{Client: client, Key: name}
	}
	return visited, nil
}

// redactDecodeError is err for a log line. A JSON syntax error quotes the
// offending character of the stored entry, which may lie inside a secret
// (a retrievable key's plaintext): only its offset is kept.
func redactDecodeError(err error) string {
	msg := err.Error()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg = strings.Replace(msg, se.Error(), "invalid JSON at byte offset "+strconv.FormatInt(se.Offset, 10), 1)
	}
	return msg
}

// sweepKey handles one key of the sweep. A mark is set right after its
// alert is raised, so an error later on cannot make that alert repeat; a
// mark whose cause is gone is cleared, so the key alerts again if the cause
// comes back (used, then stale again; rotated, then overdue again).
func (b *apikeysBackend) sweepKey(ctx context.Context, s logical.Storage, st *govState, cfg *record.Config, now time.Time, roleOf func(string) (*record.Role, error), clientOf func(string) (*record.Client, error), k *record.Key) error {
	m, err := st.marks.get(ctx, k.KeyID)
	if err != nil {
		return err
	}
	// An alert no revocation followed for long leaves time-to-revoke
	// tracking.
	if !m.Alerted.IsZero() && now.Sub(m.Alerted) > openAlertMaxAge {
		m.Alerted = time.Time{}
	}
	var idle *record.Role
	stale, overdue := false, false
	if !k.Revoked && k.State(now) != record.StateExpired {
		role, err := roleOf(k.Role)
		if err != nil {
			return err
		}
		c, err := clientOf(k.Client)
		if err != nil {
			return err
		}
		unused := now.Sub(b.lastUsedOrCreated(k))
		if role != nil && role.IdleTimeout > 0 && !k.Leased && idleFor(b, k, c, now) >= role.IdleTimeout && b.cache.usage.Trustworthy(k, now, role.IdleTimeout) {
			idle = role // revoked below: no flags for a key about to go
		} else {
			stale = cfg.ReviewPeriod > 0 && unused >= cfg.ReviewPeriod
			overdue = !k.Leased && !k.NextRotationAt.IsZero() && now.Sub(k.NextRotationAt) > overdueTolerance
		}
		if stale && m.Review.IsZero() {
			if err := b.raiseAlert(ctx, s, keyAlertFor(k, record.AlertReviewDue, record.SeverityInfo,
				"key unused for "+unused.Truncate(time.Second).String()+", at least the review_period ("+cfg.ReviewPeriod.String()+"): confirm it is still needed or revoke it",
				map[string]string{"review_period": cfg.ReviewPeriod.String()})); err != nil {
				return err
			}
			m.Review = now
			st.marks.set(k.KeyID, m)
		}
		if overdue && !m.Overdue.Equal(k.NextRotationAt) {
			msg := "rotation was due at " + k.NextRotationAt.Format(time.RFC3339) + " and has not happened"
			if !record.AutoRotates(k) {
				msg += "; the key is not retrievable, so it is not rotated automatically: rotate it with keys/" +
					k.Client + "/" + k.Name + "/rotate and hand the new secret to the client"
			}
			if err := b.raiseAlert(ctx, s, keyAlertFor(k, record.AlertRotationOverdue, record.SeverityWarning, msg,
				map[string]string{"due_at": k.NextRotationAt.Format(time.RFC3339), "automatic_rotation": strconv.FormatBool(record.AutoRotates(k))})); err != nil {
				return err
			}
			m.Overdue = k.NextRotationAt
			st.marks.set(k.KeyID, m)
		}
	}
	if !stale {
		m.Review = time.Time{}
	}
	if !overdue {
		m.Overdue = time.Time{}
	}
	st.marks.set(k.KeyID, m)
	if idle != nil {
		return b.revokeIdleKey(ctx, s, k.Client, k.Name, idle.IdleTimeout)
	}
	return nil
}

// revokeIdleKey revokes a key whose role's idle_timeout passed, re-checking
// under the key's lock that it is still idle. The revocation is attributed
// to "system" in the lifecycle log.
func (b *apikeysBackend) revokeIdleKey(ctx context.Context, s logical.Storage, client, name string, timeout time.Duration) error {
	defer b.locks.lockKey(client, name)()
	k, err := b.getKey(ctx, s, client, name)
	if err != nil || k == nil || k.Revoked {
		return err
	}
	// The client lock is held (lockKey), so its status cannot change now.
	c, err := b.getClient(ctx, s, client)
	if err != nil {
		return err
	}
	unused := idleFor(b, k, c, b.clock.Now())
	if unused < timeout {
		return nil
	}
	_, err = b.revokeLoadedKeyLocked(ctx, nil, s, k, 0, "idle_timeout: unused for "+unused.Truncate(time.Second).String()+" (role idle_timeout "+timeout.String()+")")
	if err == nil {
		b.logger.Info("revoked idle key", "client", client, "key_id", k.KeyID, "idle_timeout", timeout.String())
	}
	return err
}

// idleFor is how long key k of client c has been idle for idle_timeout: since
// its last use (or creation), or since its client was unlocked if that is
// later. A locked client's keys cannot be used, so a lock never counts as
// idleness and never ends in an idle revocation: lock/unlock stays
// reversible (SPEC §6).
func idleFor(b *apikeysBackend, k *record.Key, c *record.Client, now time.Time) time.Duration {
	if c != nil && c.Status == record.ClientLocked {
		return 0
	}
	since := b.lastUsedOrCreated(k)
	if c != nil && c.StatusChangedAt.After(since) {
		since = c.StatusChangedAt
	}
	return now.Sub(since)
}

// lastUsedOrCreated is when a key was last verified, or created if never.
func (b *apikeysBackend) lastUsedOrCreated(k *record.Key) time.Time {
	if t := b.cache.usage.LastUsed(k); !t.IsZero() {
		return t
	}
	return k.CreatedAt
}

func keyAlertFor(k *record.Key, typ, severity, msg string, details map[string]string) *record.Alert {
	v := 0
	if c := k.Current(); c != nil {
		v = c.Version
	}
	return &record.Alert{
		Type: typ, Severity: severity, Message: msg, Details: details,
		Client: k.Client, Key: k.Name, KeyID: k.KeyID, Role: k.Role, Version: v,
	}
}
