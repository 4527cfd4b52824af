package backend

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
)

func decodeEvent(t *testing.T, rec *eventlog.Entry) eventlog.Event {
	t.Helper()
	var ev eventlog.Event
	if rec == nil {
		t.Fatal("missing log entry")
	}
	if err := json.Unmarshal(rec.Event, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (e *testEnv) jwks() jose.JSONWebKeySet {
	e.t.Helper()
	resp := e.ok(logical.ReadOperation, "jwks", nil)
	if resp.Data[logical.HTTPStatusCode] != 200 || resp.Data[logical.HTTPContentType] != "application/json" {
		e.t.Fatalf("jwks response = %v", resp.Data)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Data[logical.HTTPRawBody].([]byte), &set); err != nil {
		e.t.Fatal(err)
	}
	return set
}

func TestJWKSRotationScheduleAndManual(t *testing.T) {
	e := newTestEnv(t)
	if got := e.b.unauthenticatedPaths(); len(got) != 1 || got[0] != "jwks" {
		t.Fatalf("unauthenticated paths = %v", got)
	}
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"signing_key_rotation_period": "1h", "token_ttl": "5m"})
	// The unauthenticated read never writes: before the mount initializes
	// there is no key to publish, and reading does not create one.
	before := e.storageKeys()
	if set := e.jwks(); len(set.Keys) != 0 {
		t.Fatalf("jwks before initialize = %+v", set)
	}
	if after := e.storageKeys(); !reflect.DeepEqual(before, after) {
		t.Fatalf("jwks read wrote storage:\nbefore %v\nafter  %v", before, after)
	}
	// Mounting (initialize) creates the first key; a second start keeps it.
	for i := 0; i < 2; i++ {
		if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
			t.Fatal(err)
		}
	}
	set := e.jwks()
	if len(set.Keys) != 1 {
		t.Fatalf("first jwks = %+v", set)
	}
	k1 := set.Keys[0].KeyID
	// Signing with the current key verifies against the published set.
	cfg, _ := e.b.config(e.ctx, e.storage)
	ks, err := e.b.signing.Current(e.ctx, e.storage, cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	tok, err := ks.Current.Sign(jwtsign.Claims{Claims: jwt.Claims{Subject: "acme", Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	tick := func() {
		t.Helper()
		if err := e.b.signing.Tick(e.ctx, e.storage); err != nil {
			t.Fatal(err)
		}
	}
	// A periodic tick before the pre-publication lead changes nothing.
	e.clock.Advance(29 * time.Minute)
	tick()
	if got := e.jwks(); len(got.Keys) != 1 {
		t.Fatalf("changed early: %+v", got)
	}
	// From half the period before the rotation (jwtsign.PrepublishLead)
	// the next key is published, so verifiers caching the JWKS hold it
	// before it signs; the current key still signs.
	e.clock.Advance(time.Minute)
	tick()
	set = e.jwks()
	if len(set.Keys) != 2 || set.Keys[0].KeyID != k1 {
		t.Fatalf("after pre-publication = %+v", set)
	}
	k2 := set.Keys[1].KeyID
	cached := set // a verifier that fetched the JWKS now and caches it
	if ks, err := e.b.signing.Current(e.ctx, e.storage, cfg); err != nil || ks.Current.KID != k1 {
		t.Fatalf("the pre-published key signs early: %v %v", ks.Current.KID, err)
	}
	// The tick after the period makes the pre-published key current; the
	// old key stays published.
	e.clock.Advance(30 * time.Minute)
	tick()
	set = e.jwks()
	if len(set.Keys) != 2 || set.Keys[0].KeyID != k2 || set.Keys[1].KeyID != k1 {
		t.Fatalf("after scheduled rotation = %+v", set)
	}
	// The verifier's cached JWKS already verifies tokens of the new key.
	ks2, err := e.b.signing.Current(e.ctx, e.storage, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := ks2.Current.Sign(jwtsign.Claims{Claims: jwt.Claims{Subject: "acme", Expiry: jwt.NewNumericDate(e.clock.Now().Add(5 * time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsign.Verify(tok2, cached, jwt.Expected{Time: e.clock.Now()}, 0); err != nil {
		t.Fatalf("a JWKS cached before the rotation rejects the new key's token: %v", err)
	}
	// A manual rotation right after: the first key retired 0s ago and stays
	// published for token_ttl (5m), so three keys are published.
	resp := e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	if resp.Data["kid"] == set.Keys[0].KeyID {
		t.Fatal("manual rotation kept the key")
	}
	if got := e.jwks(); len(got.Keys) != 3 {
		t.Fatalf("after manual rotation = %d keys", len(got.Keys))
	}
	// tok, signed by the first key, verifies until it expires.
	if _, err := jwtsign.Verify(tok, e.jwks(), jwt.Expected{Time: now.Add(4 * time.Minute)}, 0); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}
	// After token_ttl both rotated-out keys drop out: the first and the
	// second were retired 5m ago, so every token they signed has expired
	// and only the current key is published (a previous key is not kept
	// beyond its tokens, or one rotated out after a compromise would stay
	// trusted until the next scheduled rotation).
	e.clock.Advance(5 * time.Minute)
	if got := e.jwks(); len(got.Keys) != 1 || got.Keys[0].KeyID != resp.Data["kid"] {
		t.Fatalf("rotated-out keys still published after token_ttl: %+v", got)
	}
	// Private keys never appear in the JWKS; rotation events are logged.
	head, _ := e.b.log.Head(e.ctx, e.storage)
	n := 0
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, _ := e.b.log.Entry(e.ctx, e.storage, seq)
		if ev := decodeEvent(t, rec); ev.Type == eventlog.SigningKeyRotated {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d signing key events, want 3 (first, scheduled, manual)", n)
	}
}

// signingEvents returns the signing_key.rotated events, oldest first.
func (e *testEnv) signingEvents() []eventlog.Event {
	e.t.Helper()
	var out []eventlog.Event
	head, _ := e.b.log.Head(e.ctx, e.storage)
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, _ := e.b.log.Entry(e.ctx, e.storage, seq)
		if ev := decodeEvent(e.t, rec); ev.Type == eventlog.SigningKeyRotated {
			out = append(out, ev)
		}
	}
	return out
}

func (e *testEnv) published(kid string) bool {
	e.t.Helper()
	for _, k := range e.jwks().Keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// A key rotated out by jwks/rotate is published for token_ttl (its tokens
// verify until they expire) and no longer, without waiting for a tick or
// the next scheduled rotation.
func TestJWKSRotatedOutKeyPublishedForTokenTTLOnly(t *testing.T) {
	e := newTestEnv(t)
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	old := e.jwks().Keys[0].KeyID
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.clock.Advance(5*time.Minute - time.Second) // token_ttl is 5m
	if !e.published(old) {
		t.Fatal("outgoing key withdrawn before its tokens expired")
	}
	e.clock.Advance(time.Second)
	if e.published(old) {
		t.Fatal("outgoing key still published once every token it signed has expired")
	}
	// The tick drops it from storage too.
	if err := e.b.signing.Tick(e.ctx, e.storage); err != nil {
		t.Fatal(err)
	}
	if set, _ := e.b.signing.Read(e.ctx, e.storage); len(set.Previous) != 0 {
		t.Fatalf("%d previous keys stored after pruning", len(set.Previous))
	}
	evs := e.signingEvents()
	if last := evs[len(evs)-1]; last.Details["revoke_previous"] != "false" || last.Details["previous_kid"] != old ||
		last.Details["previous_published_until"] != testStart.Add(5*time.Minute).Format(time.RFC3339) {
		t.Fatalf("rotation event details = %v", last.Details)
	}
}

// jwks/rotate revoke_previous=true, after a suspected compromise: the
// outgoing key leaves the JWKS at once, so tokens it signed (forged ones
// included) stop verifying; the choice is logged.
func TestJWKSRotateRevokePreviousWithdrawsOutgoingKey(t *testing.T) {
	e := newTestEnv(t)
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := e.b.config(e.ctx, e.storage)
	ks, err := e.b.signing.Current(e.ctx, e.storage, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := ks.Current.KID
	tok, err := ks.Current.Sign(jwtsign.Claims{Claims: jwt.Claims{Subject: "acme", Expiry: jwt.NewNumericDate(e.clock.Now().Add(5 * time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	resp := e.ok(logical.UpdateOperation, "jwks/rotate", map[string]interface{}{"revoke_previous": true})
	if resp.Data["revoked_kid"] != old || len(resp.Data["previous_kids"].([]string)) != 0 {
		t.Fatalf("rotate response = %v", resp.Data)
	}
	set := e.jwks()
	if len(set.Keys) != 1 || set.Keys[0].KeyID != resp.Data["kid"] {
		t.Fatalf("jwks after revoke_previous = %+v", set)
	}
	if _, err := jwtsign.Verify(tok, set, jwt.Expected{Time: e.clock.Now()}, 0); err == nil {
		t.Fatal("a token of the withdrawn key still verifies")
	}
	evs := e.signingEvents()
	last := evs[len(evs)-1]
	if last.Details["revoke_previous"] != "true" || last.Details["previous_kid"] != old || last.Details["reason"] != "manual" ||
		last.Details["previous_published_until"] != e.clock.Now().Format(time.RFC3339) || last.Actor.EntityID != "entity-alice" {
		t.Fatalf("rotation event = %+v", last)
	}
}

// Lowering token_ttl never strands tokens already signed: a key rotated out
// afterwards stays published for the longest token_ttl it signed under.
func TestJWKSKeepsRotatedKeyForTokenTTLItSignedUnder(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"token_ttl": "1h"})
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := e.b.config(e.ctx, e.storage)
	ks, err := e.b.signing.Current(e.ctx, e.storage, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := ks.Current.KID
	tok, err := ks.Current.Sign(jwtsign.Claims{Claims: jwt.Claims{Subject: "acme", Expiry: jwt.NewNumericDate(e.clock.Now().Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"token_ttl": "10s"})
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.clock.Advance(59 * time.Minute)
	if _, err := jwtsign.Verify(tok, e.jwks(), jwt.Expected{Time: e.clock.Now()}, 0); err != nil {
		t.Fatalf("a token signed under token_ttl=1h stopped verifying after token_ttl was lowered: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	for _, k := range e.jwks().Keys {
		if k.KeyID == old {
			t.Fatal("the rotated-out key is still published after its tokens expired")
		}
	}
}

// A rotation that comes due before the next key was published (here the
// period is shortened) publishes it first and keeps signing with the
// current key until verifiers caching the JWKS have had it a while.
func TestSigningRotationWaitsForThePublishedNextKey(t *testing.T) {
	e := newTestEnv(t)
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	old := e.jwks().Keys[0].KeyID
	e.clock.Advance(48 * time.Hour)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"signing_key_rotation_period": "24h"})
	tick := func() {
		t.Helper()
		if err := e.b.signing.Tick(e.ctx, e.storage); err != nil {
			t.Fatal(err)
		}
	}
	signer := func() string {
		t.Helper()
		cfg, _ := e.b.config(e.ctx, e.storage)
		ks, err := e.b.signing.Current(e.ctx, e.storage, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ks.Current.KID
	}
	tick()
	set := e.jwks()
	if len(set.Keys) != 2 || set.Keys[0].KeyID != old || signer() != old {
		t.Fatalf("a due rotation without a published next key: jwks %+v, signer %s", set, signer())
	}
	next := set.Keys[1].KeyID
	e.clock.Advance(59 * time.Minute)
	tick()
	if signer() != old {
		t.Fatal("the next key signs before it was published for an hour")
	}
	e.clock.Advance(time.Minute)
	tick()
	if got := signer(); got != next {
		t.Fatalf("after an hour the signer is %s, want the published next key %s", got, next)
	}
}
