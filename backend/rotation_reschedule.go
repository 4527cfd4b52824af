package backend

import (
	"context"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Changing a role's rotation policy (rotation_period, rotation_schedule,
// rotation_window, risk_tier) applies to the keys it already has, as
// Vault's own rotating roles do: each key's next rotation becomes what the
// new policy gives counted from the key's last rotation. A shorter period
// can make a key due at once; the next tick rotates it.

// rescheduleTimeout bounds one background pass over the keys.
const rescheduleTimeout = 30 * time.Minute

// rescheduleInline is how long the role or config write itself spends on
// rescheduling: a mount of ordinary size is done before the write answers,
// so its keys read back on the new policy at once and nothing changes
// behind a later request's back. A larger mount carries on in the
// background (rescheduling a key twice is harmless).
const rescheduleInline = 5 * time.Second

// rescheduleRoleKeys recomputes the next rotation of every managed key of
// role. The role write that calls it has already stored the new policy;
// each key is re-read under its lock together with its role, so two quick
// role writes cannot leave a key on the older one.
func (b *apikeysBackend) rescheduleRoleKeys(ctx context.Context, s logical.Storage, role string) {
	ictx, cancel := context.WithTimeout(ctx, rescheduleInline)
	n, err := b.rescheduleKeys(ictx, s, role)
	timedOut := ictx.Err() != nil
	cancel()
	if err == nil {
		b.logger.Debug("keys rescheduled after a change of their role's rotation policy", "role", role, "rescheduled", n)
		return
	}
	if !timedOut {
		b.logRescheduleFailed(role, n, err)
		return
	}
	r := &b.rot
	r.reschedules.Add(1)
	go func() {
		defer r.reschedules.Done()
		ctx, cancel := context.WithTimeout(context.Background(), rescheduleTimeout)
		defer cancel()
		n, err := b.rescheduleKeys(ctx, s, role)
		if err != nil {
			b.logRescheduleFailed(role, n, err)
			return
		}
		b.logger.Info("keys rescheduled after a change of their role's rotation policy", "role", role, "rescheduled", n)
	}()
}

func (b *apikeysBackend) logRescheduleFailed(role string, rescheduled int, err error) {
	b.logger.Error("rescheduling the keys of a role after its rotation policy changed failed; the keys keep their earlier next rotation until the role is written again",
		"role", role, "rescheduled", rescheduled, "error", err)
}

// rescheduleKeys does the work of rescheduleRoleKeys and returns how many
// keys changed.
func (b *apikeysBackend) rescheduleKeys(ctx context.Context, s logical.Storage, role string) (int, error) {
	var names [][2]string
	err := b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		if k.Role == role && record.ManagedKey(k) && !k.NextRotationAt.IsZero() {
			names = append(names, [2]string{k.Client, k.Name})
		}
		return ctx.Err() == nil, ctx.Err()
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, cn := range names {
		changed, err := b.rescheduleKey(ctx, s, cn[0], cn[1])
		if err != nil {
			return n, err
		}
		if changed {
			n++
		}
	}
	return n, nil
}

func (b *apikeysBackend) rescheduleKey(ctx context.Context, s logical.Storage, client, name string) (bool, error) {
	defer b.locks.lockKey(client, name)()
	k, err := b.getKey(ctx, s, client, name)
	if err != nil || k == nil || !record.ManagedKey(k) || k.NextRotationAt.IsZero() {
		return false, err
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return false, err
	}
	role, err := b.getRole(ctx, s, k.Role)
	if err != nil || role == nil {
		return false, err
	}
	base := k.LastRotatedAt
	if base.IsZero() {
		base = k.CreatedAt
	}
	next := role.RotationPolicy(cfg).Next(base)
	if next.IsZero() || next.Equal(k.NextRotationAt) {
		return false, nil
	}
	k.NextRotationAt = next
	if err := b.commitKey(ctx, s, k, nil); err != nil {
		return false, err
	}
	return true, nil
}

// rescheduleAfterConfigChange reschedules the keys of every role whose
// effective rotation policy the configuration change from old to cfg
// changed (a role on a risk tier, or on the default tier). The caller has
// stored cfg.
func (b *apikeysBackend) rescheduleAfterConfigChange(ctx context.Context, s logical.Storage, old, cfg *record.Config) error {
	names, err := s.List(ctx, storageRolePrefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		r, err := b.getRole(ctx, s, n)
		if err != nil {
			return err
		}
		if r != nil && r.RotationPolicy(old) != r.RotationPolicy(cfg) {
			b.rescheduleRoleKeys(ctx, s, r.Name)
		}
	}
	return nil
}
