package backend

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// Reversible per-key controls: disable/enable, and the changes an update of
// keys/<client>/<name> makes (purpose, metadata, scopes, expiry). Each is
// one commitKey with a lifecycle-log entry naming what changed.

// setKeyDisabled disables (disabled=true) or enables a key; it is what the
// disable and enable endpoints and bulk operations call. It takes the key's
// locks itself (the caller holds none of them) and commits through
// commitKey, so the change and its key.disabled / key.enabled entry happen
// together. extra adds details to that entry (a bulk operation's id, say);
// it must hold no secret. req is nil for background work (actor "system").
//
// A key already in the wanted state is left alone: changed is false and
// nothing is written or logged. A missing key is a user error, as is a
// revoked one (revocation is final; enabling could not undo it). reason is
// required to disable.
func (b *apikeysBackend) setKeyDisabled(ctx context.Context, req *logical.Request, s logical.Storage, client, name string, disabled bool, reason string, extra map[string]string) (changed bool, err error) {
	// A key pasted into reason is not kept: the reason is shown on reads.
	reason = keyformat.Redact(strings.TrimSpace(reason))
	if disabled && reason == "" {
		return false, userErrorf("reason is required to disable key %s/%s (say why, e.g. an incident id)", client, name)
	}
	defer b.locks.lockKey(client, name)()
	k, err := b.getKey(ctx, s, client, name)
	if err != nil {
		return false, err
	}
	if k == nil {
		return false, userErrorf("key %s/%s does not exist", client, name)
	}
	if k.Revoked {
		return false, userErrorf("key %s/%s is revoked; revocation is final, so it cannot be disabled or enabled (re-issue it by writing role=<role> to keys/%s/%s)", client, name, client, name)
	}
	if k.Disabled == disabled {
		return false, nil
	}
	if err := b.commitDisabledLocked(ctx, req, s, k, disabled, reason, actorFromRequest(req), extra); err != nil {
		return false, err
	}
	return true, nil
}

// commitDisabledLocked sets k's disabled state and commits it with its
// key.disabled / key.enabled entry. The caller holds k's lock, has read k
// under it, and has checked that the state changes. actor is who disabled
// it (a bulk operation's creator, though the worker runs as the system).
func (b *apikeysBackend) commitDisabledLocked(ctx context.Context, req *logical.Request, s logical.Storage, k *record.Key, disabled bool, reason string, actor record.Actor, extra map[string]string) error {
	typ := eventlog.KeyEnabled
	details := map[string]string{}
	for key, v := range extra {
		details[key] = v
	}
	if reason != "" {
		details["reason"] = reason
	}
	details["before.disabled"], details["after.disabled"] = strconv.FormatBool(k.Disabled), strconv.FormatBool(disabled)
	if disabled {
		typ = eventlog.KeyDisabled
		k.Disabled, k.DisabledAt, k.DisabledReason, k.DisabledBy = true, b.clock.Now(), reason, &actor
	} else {
		details["disabled_at"] = k.DisabledAt.Format(time.RFC3339)
		details["disabled_reason"] = k.DisabledReason
		k.Disabled, k.DisabledAt, k.DisabledReason, k.DisabledBy = false, time.Time{}, "", nil
	}
	ev := eventFor(req, typ, k, 0)
	ev.Details = details
	return b.commitKey(ctx, s, k, nil, ev)
}

// keyUpdate is a validated update of a key's non-secret fields; a nil
// pointer leaves the field as it is.
type keyUpdate struct {
	purpose  *string
	metadata map[string]string // nil: unchanged
	scopes   []string          // nil: unchanged
	// expiresAt: nil unchanged; zero time removes the expiry.
	expiresAt *time.Time
}

func (u keyUpdate) empty() bool {
	return u.purpose == nil && u.metadata == nil && u.scopes == nil && u.expiresAt == nil
}

// expiryWithinRole refuses an expiry later than a new key of the role
// would get: a role's key_lifetime is its policy's longest life, so an
// extension never reaches past it, nor removes the expiry.
func expiryWithinRole(role *record.Role, at *time.Time, now time.Time) error {
	if at == nil || role.KeyLifetime <= 0 {
		return nil
	}
	limit := now.Add(role.KeyLifetime)
	if at.IsZero() || at.After(limit) {
		return userErrorf("expires_at: role %q sets key_lifetime %s, so a key's expiry can be at most %s (one lifetime from now)", role.Name, role.KeyLifetime, limit.UTC().Format(time.RFC3339))
	}
	return nil
}

// noExpiry is the expires_at value that removes a key's expiry.
const noExpiry = "none"

// parseExpiresAt reads expires_at: RFC 3339 in the future, or "none"
// (the zero time) to remove the expiry.
func parseExpiresAt(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, noExpiry) {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, userErrorf("expires_at %q is not an RFC 3339 time (e.g. 2030-01-02T15:04:05Z), nor %q to remove the expiry", v, noExpiry)
	}
	if !t.After(now) {
		return time.Time{}, userErrorf("expires_at %s is not in the future (now %s); to stop the key at once, disable or revoke it", t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// updateKey applies u to a key under its locks and commits it with a
// key.updated entry holding before.<field> and after.<field> of each field
// that changed; an update that changes nothing writes and logs nothing.
// Purpose and metadata can change on any key; scopes and expiry only on a
// managed key that is not revoked (and, for expiry, not yet expired).
func (b *apikeysBackend) updateKey(ctx context.Context, req *logical.Request, client, name string, u keyUpdate) (*record.Key, error) {
	defer b.locks.lockKey(client, name)()
	s := req.Storage
	k, err := b.getKey(ctx, s, client, name)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, userErrorf("key %s/%s does not exist", client, name)
	}
	now := b.clock.Now()
	if u.scopes != nil || u.expiresAt != nil {
		field := "scopes"
		if u.scopes == nil {
			field = "expires_at"
		}
		switch {
		case k.Revoked:
			return nil, userErrorf("%s: key %s/%s is revoked; re-issue it by writing role=<role> to keys/%s/%s", field, client, name, client, name)
		case k.Leased:
			return nil, userErrorf("%s: key %s/%s is a leased key; it is managed through its Vault lease", field, client, name)
		}
	}
	if u.expiresAt != nil && !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return nil, userErrorf("expires_at: key %s/%s expired at %s; its expiry can no longer change (revoke it, then re-issue it under the same name)", client, name, k.ExpiresAt.Format(time.RFC3339))
	}
	if u.scopes != nil || u.expiresAt != nil {
		role, err := b.getRole(ctx, s, k.Role)
		if err != nil {
			return nil, err
		}
		if role == nil {
			return nil, userErrorf("role %q of key %s/%s no longer exists: its scopes and expiry cannot change", k.Role, client, name)
		}
		if u.scopes != nil {
			if _, err := keyScopesFor(role, u.scopes, true); err != nil {
				return nil, err
			}
		}
		if err := expiryWithinRole(role, u.expiresAt, now); err != nil {
			return nil, err
		}
	}
	details := map[string]string{}
	var changed []string
	note := func(field, before, after string) {
		if before == after {
			return
		}
		changed = append(changed, field)
		details["before."+field], details["after."+field] = before, after
	}
	if u.purpose != nil {
		note("purpose", k.Purpose, *u.purpose)
		k.Purpose = *u.purpose
	}
	if u.metadata != nil {
		note("metadata", strings.Join(record.MetadataPairs(k.Metadata), ","), strings.Join(record.MetadataPairs(u.metadata), ","))
		k.Metadata = u.metadata
		if len(k.Metadata) == 0 {
			k.Metadata = nil
		}
	}
	if u.scopes != nil {
		note("scopes", scopes.Join(k.Scopes), scopes.Join(u.scopes))
		k.Scopes = u.scopes
	}
	if u.expiresAt != nil {
		note("expires_at", timeText(k.ExpiresAt), timeText(*u.expiresAt))
		k.ExpiresAt = *u.expiresAt
	}
	if len(changed) == 0 {
		return k, nil
	}
	sort.Strings(changed)
	details["changed"] = strings.Join(changed, ",")
	ev := eventFor(req, eventlog.KeyUpdated, k, 0)
	ev.Details = details
	if err := b.commitKey(ctx, s, k, nil, ev); err != nil {
		return nil, err
	}
	return k, nil
}

// timeText is a time as a log detail ("none" for the zero time).
func timeText(t time.Time) string {
	if t.IsZero() {
		return noExpiry
	}
	return t.UTC().Format(time.RFC3339)
}
