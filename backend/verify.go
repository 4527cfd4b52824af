package backend

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/usage"
)

// verifyKey checks a presented key (SPEC §5) and records the outcome:
// usage for an identified key, and the governance hook for every outcome.
// The result's Key, Role and Client are shared cached objects: read only.
func (b *apikeysBackend) verifyKey(ctx context.Context, s logical.Storage, in record.VerifyInput) (record.VerifyResult, error) {
	now := b.clock.Now()
	res, err := b.checkKey(ctx, s, in, now)
	if err != nil {
		return record.VerifyResult{}, err
	}
	if res.Key != nil {
		version, source := 0, ""
		if res.Version != nil {
			version = res.Version.Version
		}
		code := res.Code
		if res.Active {
			code = record.OutcomeActive
			source = usage.CanonicalSource(in.ClientIP)
		}
		b.cache.usage.Record(res.Key, version, code, source, now)
	}
	b.onVerify(in, res)
	return res, nil
}

// checkKey decides the outcome. The order of checks is part of the
// contract: malformed input never reaches storage; a key that does not
// exist, or is revoked or expired, says so before any policy check.
func (b *apikeysBackend) checkKey(ctx context.Context, s logical.Storage, in record.VerifyInput, now time.Time) (record.VerifyResult, error) {
	if _, err := keyformat.Parse(in.Key); err != nil {
		return record.VerifyResult{Code: record.CodeMalformed}, nil
	}
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return record.VerifyResult{}, err
	}
	sum := hmacSum(&b.cache.hmacStates, secret, in.Key)
	var hexBuf [2 * sha256.Size]byte
	hex.Encode(hexBuf[:], sum[:])
	hmacHex := string(hexBuf[:])

	ie, err := b.cache.verify.Index(hmacHex, func() (*record.IndexEntry, error) { return b.getIndex(ctx, s, hmacHex) })
	if err != nil || ie == nil {
		return record.VerifyResult{Code: record.CodeNotFound}, err
	}
	k, err := b.cache.verify.Key(ie.Client, ie.Name, func() (*record.Key, error) { return b.getKey(ctx, s, ie.Client, ie.Name) })
	if err != nil || k == nil {
		return record.VerifyResult{Code: record.CodeNotFound}, err
	}
	// Only a version the key record holds counts: an index entry alone
	// (e.g. left by an interrupted rotation) never verifies.
	var v *record.KeyVersion
	for _, kv := range k.Versions {
		if constantTimeEqual(kv.HMAC, hmacHex) {
			v = kv
		}
	}
	if v == nil {
		if ie.KeyID != "" && ie.KeyID != k.KeyID {
			// The name was re-issued after this key was revoked: its
			// index entries still name the revoked key.
			return record.VerifyResult{Code: record.CodeRevoked}, nil
		}
		return record.VerifyResult{Code: record.CodeNotFound}, nil
	}
	res := record.VerifyResult{Key: k, Version: v}
	fail := func(code string) (record.VerifyResult, error) {
		res.Code = code
		return res, nil
	}

	// A running bulk revoke holds for every key it selects from the moment
	// it is accepted, before its worker reaches the key.
	if code := b.ops.instantCode(k); code != "" {
		return fail(code)
	}
	graceOver := v.State == record.StatePrevious && !now.Before(v.GraceEndsAt)
	if graceOver && !k.Revoked {
		pending, err := b.retirementPending(ctx, s, k, v, now)
		if err != nil {
			return record.VerifyResult{}, err
		}
		graceOver = !pending
		res.RetirementPending = pending
	}
	switch {
	case k.Revoked || v.State == record.StateRevoked:
		return fail(record.CodeRevoked)
	case v.State == record.StateRetired,
		graceOver,
		!k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return fail(record.CodeExpired)
	case v.State == record.StatePending && !in.AllowPending:
		return fail(record.CodeNotFound)
	case v.State != record.StateActive && v.State != record.StatePrevious && v.State != record.StatePending:
		return fail(record.CodeNotFound) // an unknown state is never accepted
	}
	if k.Disabled {
		return fail(record.CodeDisabled)
	}

	c, err := b.cache.verify.Client(k.Client, func() (*record.Client, error) { return b.getClient(ctx, s, k.Client) })
	if err != nil {
		return record.VerifyResult{}, err
	}
	res.Client = c
	switch {
	case c == nil || c.Status == record.ClientDeprovisioned:
		// Its keys are being (or were) revoked: answer what they will say.
		return fail(record.CodeRevoked)
	case c.Status != record.ClientActive:
		return fail(record.CodeLocked)
	}
	role, err := b.cache.verify.Role(k.Role, func() (*record.Role, error) { return b.getRole(ctx, s, k.Role) })
	if err != nil {
		return record.VerifyResult{}, err
	}
	if role == nil {
		return fail(record.CodeNotFound) // a role is deleted only when its keys are revoked
	}
	res.Role = role

	if (in.Environment != "" && in.Environment != k.Environment) ||
		(len(c.AllowedEnvironments) > 0 && !slices.Contains(c.AllowedEnvironments, k.Environment)) {
		return fail(record.CodeForbiddenEnvironment)
	}
	// A restriction past its expiry no longer applies, before the tick
	// that records the lift removes it.
	restr := c.Restriction
	if !restr.ActiveAt(now) {
		restr = nil
	}
	if !record.IPAllowed(c.BoundCIDRs, in.ClientIP) || !record.IPAllowed(role.BoundCIDRs, in.ClientIP) ||
		(restr != nil && !record.IPAllowed(restr.BoundCIDRs, in.ClientIP)) {
		return fail(record.CodeForbiddenIP)
	}
	if ok, err := b.audienceAllowed(ctx, s, role, in.Audience); err != nil || !ok {
		if err != nil {
			return record.VerifyResult{}, err
		}
		return fail(record.CodeForbiddenAudience)
	}
	res.EffectiveScopes = scopes.Intersect(k.Scopes, role.Scopes)
	if restr != nil && len(restr.Scopes) > 0 {
		res.EffectiveScopes = scopes.Intersect(res.EffectiveScopes, restr.Scopes)
	}
	if len(res.EffectiveScopes) == 0 {
		// The role was narrowed past every scope of the key: the key can
		// do nothing any more, so it is refused even when the caller names
		// no scope (an "active" answer with an empty scope would let a
		// gateway that checks only "active" admit it; the token exchange
		// refuses it too). Roles require scopes, so this is never a key
		// that was issued without any.
		return fail(record.CodeForbiddenScope)
	}
	for _, want := range in.Scopes {
		if !scopes.Covers(res.EffectiveScopes, want) {
			return fail(record.CodeForbiddenScope)
		}
	}
	if !b.takeRate(&res, k, role, c, restr, now) {
		return fail(record.CodeRateLimited)
	}
	res.Active = true
	return res, nil
}

// constantTimeEqual compares two HMACs without an early exit.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(d, 0) == 1
}
