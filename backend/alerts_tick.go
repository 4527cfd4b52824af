package backend

import (
	"context"
	"time"

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
	b.gov.mu.Lock()
	alerts, outcomes, dropped := b.gov.det.drain()
	b.gov.mu.Unlock()
	for k, v := range outcomes {
		st.Verify[k] += v
	}
	st.DroppedAlerts += uint64(dropped)
	for i, a := range alerts {
		if err := b.raiseAlert(ctx, s, a); err != nil {
			b.gov.mu.Lock()
			b.gov.det.requeue(alerts[i+1:])
			b.gov.mu.Unlock()
			return err
		}
	}
	return nil
}

// scanKeys is the background sweep over all keys: it revokes keys idle for
// their role's idle_timeout, and raises one alert per key that is due for
// review (unused for the mount's review_period) or overdue for rotation.
// It returns how many keys it visited.
func (b *apikeysBackend) scanKeys(ctx context.Context, s logical.Storage, st *govState) (int, error) {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return 0, err
	}
	visited := 0
	now := b.clock.Now()
	roles := map[string]*Role{}
	roleOf := func(name string) (*Role, error) {
		if r, ok := roles[name]; ok {
			return r, nil
		}
		r, err := b.getRole(ctx, s, name)
		roles[name] = r
		return r, err
	}
	var idle []*Key
	review, overdue := map[string]bool{}, map[string]bool{}
	err = b.forEachKey(ctx, s, func(k *Key) (bool, error) {
		visited++
		if k.Revoked || k.state(now) == stateExpired {
			return true, nil
		}
		role, err := roleOf(k.Role)
		if err != nil {
			return false, err
		}
		unused := now.Sub(b.lastUsedOrCreated(k))
		if role != nil && role.IdleTimeout > 0 && !k.Leased && unused >= role.IdleTimeout {
			idle = append(idle, k)
			return true, nil
		}
		if cfg.ReviewPeriod > 0 && unused >= cfg.ReviewPeriod {
			review[k.KeyID] = true
			if _, done := st.Review[k.KeyID]; !done {
				if err := b.raiseAlert(ctx, s, keyAlertFor(k, alertReviewDue, severityInfo,
					"key unused for "+unused.Truncate(time.Second).String()+", at least the review_period ("+cfg.ReviewPeriod.String()+"): confirm it is still needed or revoke it",
					map[string]string{"review_period": cfg.ReviewPeriod.String()})); err != nil {
					return false, err
				}
				st.Review[k.KeyID] = now
			}
		}
		if !k.Leased && !k.NextRotationAt.IsZero() && now.Sub(k.NextRotationAt) > overdueTolerance {
			overdue[k.KeyID] = true
			if due, done := st.Overdue[k.KeyID]; !done || !due.Equal(k.NextRotationAt) {
				if err := b.raiseAlert(ctx, s, keyAlertFor(k, alertRotationOverdue, severityWarning,
					"rotation was due at "+k.NextRotationAt.Format(time.RFC3339)+" and has not happened",
					map[string]string{"due_at": k.NextRotationAt.Format(time.RFC3339)})); err != nil {
					return false, err
				}
				st.Overdue[k.KeyID] = k.NextRotationAt
			}
		}
		return true, nil
	})
	if err != nil {
		return visited, err
	}
	// Only after a complete sweep: forget marks of keys that are no longer
	// flagged, so they alert again if they become stale or overdue again.
	for id := range st.Review {
		if !review[id] {
			delete(st.Review, id)
		}
	}
	for id := range st.Overdue {
		if !overdue[id] {
			delete(st.Overdue, id)
		}
	}
	st.pruneOpenAlerts(now)
	for _, k := range idle {
		r := roles[k.Role]
		if err := b.revokeIdleKey(ctx, s, k.Client, k.Name, r.IdleTimeout); err != nil {
			return visited, err
		}
	}
	return visited, nil
}

// revokeIdleKey revokes a key whose role's idle_timeout passed, re-checking
// under the key's lock that it is still idle. The revocation is attributed
// to "system" in the lifecycle log.
func (b *apikeysBackend) revokeIdleKey(ctx context.Context, s logical.Storage, client, name string, timeout time.Duration) error {
	defer b.lockKey(client, name)()
	k, err := b.getKey(ctx, s, client, name)
	if err != nil || k == nil || k.Revoked {
		return err
	}
	unused := b.clock.Now().Sub(b.lastUsedOrCreated(k))
	if unused < timeout {
		return nil
	}
	_, err = b.revokeLoadedKeyLocked(ctx, nil, s, k, 0, "idle_timeout: unused for "+unused.Truncate(time.Second).String()+" (role idle_timeout "+timeout.String()+")")
	if err == nil {
		b.logger.Info("revoked idle key", "client", client, "key_id", k.KeyID, "idle_timeout", timeout.String())
	}
	return err
}

// lastUsedOrCreated is when a key was last verified, or created if never.
func (b *apikeysBackend) lastUsedOrCreated(k *Key) time.Time {
	if t := b.lastUsed(k); !t.IsZero() {
		return t
	}
	return k.CreatedAt
}

func keyAlertFor(k *Key, typ, severity, msg string, details map[string]string) *Alert {
	v := 0
	if c := k.current(); c != nil {
		v = c.Version
	}
	return &Alert{
		Type: typ, Severity: severity, Message: msg, Details: details,
		Client: k.Client, Key: k.Name, KeyID: k.KeyID, Role: k.Role, Version: v,
	}
}
