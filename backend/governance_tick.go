package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// governanceTick runs background governance work under the governance
// state lock, in four steps, each whether or not an earlier one failed:
//  1. it persists the alerts and verify counts detected since the last tick;
//  2. it sweeps the tick's quota of keys, revoking idle ones, flagging those
//     due for review or overdue for rotation, giving advance notice of
//     rotations and expiries, and counting them into the key metrics;
//  3. it folds new lifecycle-log entries into the persisted metrics;
//  4. it prunes alerts past their retention.
//
// What each step got done is saved even when another failed. Its cost is
// bounded by the quotas and the new log entries, not by the number of keys
// or alerts.
func (b *apikeysBackend) governanceTick(ctx context.Context, req *logical.Request) error {
	s := req.Storage
	var steps error
	err := b.gov.Update(ctx, s, func(st *governance.State) error {
		steps = errors.Join(
			b.flushDetectionsLocked(ctx, s, st),
			b.sweepKeys(ctx, s, st),
			b.gov.FoldLog(ctx, s, st),
			b.pruneAlerts(ctx, s, st),
			b.liftExpiredRestrictions(ctx, s),
		)
		return nil
	})
	return errors.Join(steps, err)
}

// flushDetections persists the alerts and verify counts buffered by
// onVerify. Reading alerts calls it, so what verify saw is listed at once
// rather than after the next periodic tick.
func (b *apikeysBackend) flushDetections(ctx context.Context, s logical.Storage) error {
	if !b.writeSafe() {
		return nil // a node that may not write leaves it to the active node's tick
	}
	return b.gov.Update(ctx, s, func(st *governance.State) error {
		return b.flushDetectionsLocked(ctx, s, st)
	})
}

// flushDetectionsLocked moves the detector's buffers into storage and st,
// the state governance.Runtime.Update passes.
func (b *apikeysBackend) flushDetectionsLocked(ctx context.Context, s logical.Storage, st *governance.State) error {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	alerts, outcomes, byClient, dropped := b.gov.det.Drain()
	for k, v := range outcomes {
		st.Verify[k] += v
	}
	for k, v := range byClient {
		st.VerifyByClient.Add(cfg.MetricsClients, k.Client, k.Outcome, v)
	}
	st.VerifyByClient.Keep(cfg.MetricsClients)
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

// sweepKeys runs one step of the background sweep over all keys
// (governance.Runtime.Sweep walks them): for each key of the batch it
// revokes the key if idle for its role's idle_timeout, raises one alert per
// key that is due for review (unused for the mount's review_period) or
// overdue for rotation, gives advance notice of rotations and expiries
// (governance_notices.go), and drops plaintext its role no longer lets
// anyone read.
//
// A key that cannot be handled (its record or marks unreadable or
// undecodable, an alert or revocation not stored) is logged as a warning
// and skipped until the next pass. What it got done is kept (sweepKey marks
// an alert right after raising it), and what it did not is redone then:
// nothing is recorded as done for it.
func (b *apikeysBackend) sweepKeys(ctx context.Context, s logical.Storage, st *governance.State) error {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	now := b.clock.Now()
	roleOf := memoByName(func(name string) (*record.Role, error) { return b.getRole(ctx, s, name) })
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, s, name) })
	failed := 0
	err = b.gov.Sweep(ctx, s, st, func(client, name string) error {
		keyID := ""
		k, err := b.getKey(ctx, s, client, name)
		if err == nil && k != nil {
			keyID = k.KeyID
			err = b.sweepKey(ctx, s, st, cfg, now, roleOf, clientOf, k)
			if err == nil {
				err = b.dropUnreadablePlaintext(ctx, s, roleOf, clientOf, k)
			}
		}
		if ctx.Err() != nil {
			// Stopped: the cursor stays before this key, which the next
			// tick visits and counts.
			return ctx.Err()
		}
		if k != nil {
			// The key as read: one the sweep has just revoked for
			// idleness counts as revoked from the next pass on.
			if cerr := countKey(st.KeysPass, cfg, now, k, clientOf, roleOf); err == nil {
				err = cerr
			}
		}
		if err != nil { // skipped, not stopped
			failed++
			if failed <= sweepWarnLimit {
				b.logger.Warn("governance sweep could not handle a key; skipped until the next pass", "client", client, "key", name, "key_id", keyID, "error", redactDecodeError(err))
			}
		}
		return err
	})
	if failed > sweepWarnLimit {
		b.logger.Warn("governance sweep skipped keys it could not handle; they are retried in the next pass", "skipped", failed, "logged", sweepWarnLimit)
	}
	return err
}

// sweepKey handles one key of the sweep. A mark is set right after its
// alert or notice is raised, so an error later on cannot make it repeat; a
// mark whose cause is gone is cleared, so the key alerts again if the cause
// comes back (used, then stale again; rotated, then overdue again or due
// soon again).
func (b *apikeysBackend) sweepKey(ctx context.Context, s logical.Storage, st *governance.State, cfg *record.Config, now time.Time, roleOf func(string) (*record.Role, error), clientOf func(string) (*record.Client, error), k *record.Key) error {
	m, err := st.MarksOf(ctx, k.KeyID)
	if err != nil {
		return err
	}
	m.Age(now)
	var idle *record.Role
	stale, overdue := false, false
	// What the notice marks are kept for; zero for a key that is gone.
	var noticeDue, expires time.Time
	if !k.Revoked && k.State(now) != record.StateExpired {
		role, err := roleOf(k.Role)
		if err != nil {
			return err
		}
		c, err := clientOf(k.Client)
		if err != nil {
			return err
		}
		used := b.lastUsedOrCreated(k)
		unused := now.Sub(used)
		if role != nil && role.IdleTimeout > 0 && !k.Leased && governance.IdleFor(used, c, now) >= role.IdleTimeout && b.cache.usage.Trustworthy(k, now, role.IdleTimeout) {
			idle = role // revoked below: no flags for a key about to go
		} else {
			stale = governance.ReviewDue(unused, cfg.ReviewPeriod)
			overdue = !k.Leased && governance.RotationOverdue(k.NextRotationAt, now)
		}
		if stale && m.Review.IsZero() {
			if err := b.raiseAlert(ctx, s, keyAlertFor(k, record.AlertReviewDue, record.SeverityInfo,
				"key unused for "+unused.Truncate(time.Second).String()+", at least the review_period ("+cfg.ReviewPeriod.String()+"): confirm it is still needed or revoke it",
				map[string]string{"review_period": cfg.ReviewPeriod.String()})); err != nil {
				return err
			}
			m.Review = now
			st.SetMarks(k.KeyID, m)
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
			st.SetMarks(k.KeyID, m)
		}
		noticeDue, expires = rotationNoticeDue(k), k.ExpiresAt
		if idle == nil {
			if err := b.sweepNotices(ctx, s, st, cfg, role, now, k, &m); err != nil {
				return err
			}
		}
	}
	m.Settle(stale, overdue)
	m.SettleNotices(noticeDue, expires)
	st.SetMarks(k.KeyID, m)
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
	unused := governance.IdleFor(b.lastUsedOrCreated(k), c, b.clock.Now())
	if unused < timeout {
		return nil
	}
	_, err = b.revokeLoadedKeyLocked(ctx, nil, s, k, 0, "idle_timeout: unused for "+unused.Truncate(time.Second).String()+" (role idle_timeout "+timeout.String()+")")
	if err == nil {
		b.logger.Info("revoked idle key", "client", client, "key_id", k.KeyID, "idle_timeout", timeout.String())
	}
	return err
}

// alertPruneEventMax is how many ids one alerts.pruned entry names (about
// 2.5 KB), as keys.purged does.
const alertPruneEventMax = 100

// pruneAlerts deletes the alerts past their retention (SPEC §7), which the
// governance runtime picks (governance.Runtime.PruneAlerts). Their history
// stays in the lifecycle log, which only an operator's archival shortens: alert.raised and
// alert.acknowledged entries remain, and an alerts.pruned entry names the
// pruned alert ids. Each such entry is written before its alerts are
// deleted, as keys.purged is, so no alert disappears without the log
// saying so. The governance tick calls it with the state Update passes.
func (b *apikeysBackend) pruneAlerts(ctx context.Context, s logical.Storage, st *governance.State) error {
	now := b.clock.Now()
	pruned, err := b.gov.PruneAlerts(ctx, s, st, now, func(ids []string) error {
		for len(ids) > 0 {
			batch := ids[:min(len(ids), alertPruneEventMax)]
			ids = ids[len(batch):]
			ev := systemEvent(eventlog.AlertsPruned)
			ev.Time = now
			ev.Details = map[string]string{
				"count":                  strconv.Itoa(len(batch)),
				"alert_ids":              strings.Join(batch, ","),
				"acknowledged_retention": governance.AcknowledgedAlertRetention.String(),
				"open_retention":         governance.OpenAlertRetention.String(),
			}
			if err := b.log.Append(ctx, s, ev); err != nil {
				return err
			}
			for _, id := range batch {
				if err := s.Delete(ctx, alertStorageKey(id)); err != nil {
					return fmt.Errorf("deleting alert %s: %w", id, err)
				}
			}
		}
		return nil
	})
	if pruned > 0 {
		b.logger.Info("pruned alerts past their retention", "pruned", pruned,
			"acknowledged_retention", governance.AcknowledgedAlertRetention.String(), "open_retention", governance.OpenAlertRetention.String())
	}
	return err
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
