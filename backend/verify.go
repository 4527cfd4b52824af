package backend

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// verifyKey checks a presented key (SPEC §5) and records the outcome:
// usage for an identified key, and the governance hook for every outcome.
// The result's Key, Role and Client are shared cached objects: read only.
func (b *apikeysBackend) verifyKey(ctx context.Context, s logical.Storage, in verifyInput) (verifyResult, error) {
	now := b.clock.Now()
	res, err := b.checkKey(ctx, s, in, now)
	if err != nil {
		return verifyResult{}, err
	}
	if res.Key != nil {
		version, source := 0, ""
		if res.Version != nil {
			version = res.Version.Version
		}
		code := res.Code
		if res.Active {
			code = outcomeActive
			source = canonicalSource(in.ClientIP)
		}
		b.cache.usage.record(res.Key, version, code, source, now)
	}
	b.onVerify(in, res)
	return res, nil
}

// checkKey decides the outcome. The order of checks is part of the
// contract: malformed input never reaches storage; a key that does not
// exist, or is revoked or expired, says so before any policy check.
func (b *apikeysBackend) checkKey(ctx context.Context, s logical.Storage, in verifyInput, now time.Time) (verifyResult, error) {
	if _, err := keyformat.Parse(in.Key); err != nil {
		return verifyResult{Code: codeMalformed}, nil
	}
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return verifyResult{}, err
	}
	sum := hmacSum(&b.cache.hmacStates, secret, in.Key)
	var hexBuf [2 * sha256.Size]byte
	hex.Encode(hexBuf[:], sum[:])
	hmacHex := string(hexBuf[:])

	ie, err := b.cachedIndex(ctx, s, hmacHex)
	if err != nil || ie == nil {
		return verifyResult{Code: codeNotFound}, err
	}
	k, err := b.cachedKey(ctx, s, ie.Client, ie.Name)
	if err != nil || k == nil {
		return verifyResult{Code: codeNotFound}, err
	}
	// Only a version the key record holds counts: an index entry alone
	// (e.g. left by an interrupted rotation) never verifies.
	var v *KeyVersion
	for _, kv := range k.Versions {
		if constantTimeEqual(kv.HMAC, hmacHex) {
			v = kv
		}
	}
	if v == nil {
		return verifyResult{Code: codeNotFound}, nil
	}
	res := verifyResult{Key: k, Version: v}
	fail := func(code string) (verifyResult, error) {
		res.Code = code
		return res, nil
	}

	graceOver := v.State == statePrevious && !now.Before(v.GraceEndsAt)
	if graceOver && !k.Revoked {
		pending, err := b.retirementPending(ctx, s, k, v, now)
		if err != nil {
			return verifyResult{}, err
		}
		graceOver = !pending
		res.RetirementPending = pending
	}
	switch {
	case k.Revoked || v.State == stateRevoked:
		return fail(codeRevoked)
	case v.State == stateRetired,
		graceOver,
		!k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return fail(codeExpired)
	case v.State == statePending && !in.AllowPending:
		return fail(codeNotFound)
	case v.State != stateActive && v.State != statePrevious && v.State != statePending:
		return fail(codeNotFound) // an unknown state is never accepted
	}

	c, err := b.cachedClient(ctx, s, k.Client)
	if err != nil {
		return verifyResult{}, err
	}
	res.Client = c
	switch {
	case c == nil || c.Status == clientDeprovisioned:
		// Its keys are being (or were) revoked: answer what they will say.
		return fail(codeRevoked)
	case c.Status != clientActive:
		return fail(codeLocked)
	}
	role, err := b.cachedRole(ctx, s, k.Role)
	if err != nil {
		return verifyResult{}, err
	}
	if role == nil {
		return fail(codeNotFound) // a role is deleted only when its keys are revoked
	}
	res.Role = role

	if (in.Environment != "" && in.Environment != k.Environment) ||
		(len(c.AllowedEnvironments) > 0 && !contains(c.AllowedEnvironments, k.Environment)) {
		return fail(codeForbiddenEnvironment)
	}
	if !ipAllowed(c.BoundCIDRs, in.ClientIP) || !ipAllowed(role.BoundCIDRs, in.ClientIP) {
		return fail(codeForbiddenIP)
	}
	if in.Audience != "" && !contains(role.Audiences, in.Audience) {
		return fail(codeForbiddenAudience)
	}
	res.EffectiveScopes = scopes.Intersect(k.Scopes, role.Scopes)
	if len(res.EffectiveScopes) == 0 {
		// The role was narrowed past every scope of the key: the key can
		// do nothing any more, so it is refused even when the caller names
		// no scope (an "active" answer with an empty scope would let a
		// gateway that checks only "active" admit it; the token exchange
		// refuses it too). Roles require scopes, so this is never a key
		// that was issued without any.
		return fail(codeForbiddenScope)
	}
	for _, want := range in.Scopes {
		if !scopes.Covers(res.EffectiveScopes, want) {
			return fail(codeForbiddenScope)
		}
	}
	if role.RateLimit > 0 && !b.cache.limits.allow(k.KeyID, role.RateLimit, role.rateLimitWindow(), now) {
		return fail(codeRateLimited)
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

// expiry is the "exp" of an accepted version: the key's hard expiry, or the
// end of a previous version's grace if earlier (zero: none). A version
// waiting for the tick that decides its retirement is good until that
// decision's bound, never an exp already past.
func (res verifyResult) expiry() time.Time {
	k, v := res.Key, res.Version
	exp := k.ExpiresAt
	end := v.GraceEndsAt
	if res.RetirementPending {
		end = end.Add(retirementDecisionBound)
	}
	if v.State == statePrevious && (exp.IsZero() || end.Before(exp)) {
		exp = end
	}
	return exp
}
