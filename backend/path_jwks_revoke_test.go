package backend

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

func (e *testEnv) jwksKIDs() []string {
	e.t.Helper()
	var out []string
	for _, k := range e.jwks().Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// revokedEvents returns the kids of the signing_key.revoked events, oldest
// first, with their details.
func (e *testEnv) revokedEvents() []eventlog.Event {
	e.t.Helper()
	var out []eventlog.Event
	head, _ := e.b.log.Head(e.ctx, e.storage)
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, _ := e.b.log.Entry(e.ctx, e.storage, seq)
		if ev := decodeEvent(e.t, rec); ev.Type == eventlog.SigningKeyRevoked {
			out = append(out, ev)
		}
	}
	return out
}

// revoke_previous=true withdraws every key but the fresh current one: the
// outgoing key, keys rotated out before it and the pre-published next key.
func TestJWKSRotateRevokePreviousWithdrawsEveryOtherKey(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"signing_key_rotation_period": "4h", "token_ttl": "3h"})
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	// Half the period later the next key is published ahead of its use.
	e.clock.Advance(2 * time.Hour)
	if err := e.b.signing.Tick(e.ctx, e.storage); err != nil {
		t.Fatal(err)
	}
	before := e.jwksKIDs()
	if len(before) != 4 {
		t.Fatalf("published before = %v, want current, next and two rotated out", before)
	}
	resp := e.ok(logical.UpdateOperation, "jwks/rotate", map[string]interface{}{"revoke_previous": true})
	cur := resp.Data["kid"].(string)
	if got := e.jwksKIDs(); !reflect.DeepEqual(got, []string{cur}) {
		t.Fatalf("published after revoke_previous = %v, want only %s (before: %v)", got, cur, before)
	}
	for _, kid := range before {
		if kid == cur {
			t.Fatalf("revoke_previous reused a key stored alongside the old one: %s", cur)
		}
	}
	// current, then next and the rotated-out keys newest first
	want := []string{before[0], before[1], before[2], before[3]}
	if got := resp.Data["revoked_kids"]; !reflect.DeepEqual(got, want) || resp.Data["revoked_kid"] != before[0] {
		t.Fatalf("response = %v, want revoked_kids %v", resp.Data, want)
	}
	var logged []string
	for _, ev := range e.revokedEvents() {
		if ev.Details["reason"] != "rotate revoke_previous" || ev.Details["current_kid"] != cur || ev.Actor.EntityID != "entity-alice" {
			t.Fatalf("revoked event = %+v", ev)
		}
		logged = append(logged, ev.Details["kid"])
	}
	if !reflect.DeepEqual(logged, want) {
		t.Fatalf("logged withdrawals %v, want %v", logged, want)
	}
	// Nothing brings them back: not a reload, not the tick.
	r := e.reloaded()
	if err := r.b.signing.Tick(r.ctx, r.storage); err != nil {
		t.Fatal(err)
	}
	if got := r.jwksKIDs(); !reflect.DeepEqual(got, []string{cur}) {
		t.Fatalf("published after a reload = %v", got)
	}
}

// jwks/revoke withdraws any named published key but the current one.
func TestJWKSRevokeNamedKey(t *testing.T) {
	e := newTestEnv(t)
	if err := e.b.initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	all := e.jwksKIDs() // current, then rotated out newest first
	cur, newer, older := all[0], all[1], all[2]

	// Refusals name the field and change nothing.
	before := e.storageKeys()
	e.userErr(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{"kid": cur}, "current signing key")
	e.userErr(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{"kid": older + ",nope"}, `kid: "nope" is not published`)
	e.userErr(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{}, "kid")
	if got := e.jwksKIDs(); !reflect.DeepEqual(got, all) || !reflect.DeepEqual(e.storageKeys(), before) {
		t.Fatalf("a refused revoke changed something: %v", got)
	}

	// The key rotated out first, which revoke_previous never reached.
	resp := e.ok(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{"kid": older})
	if resp.Data["kid"] != cur || !reflect.DeepEqual(resp.Data["previous_kids"], []string{newer}) || !reflect.DeepEqual(resp.Data["revoked_kids"], []string{older}) {
		t.Fatalf("revoke response = %v", resp.Data)
	}
	if got := e.jwksKIDs(); !reflect.DeepEqual(got, []string{cur, newer}) {
		t.Fatalf("published after revoke = %v", got)
	}
	evs := e.revokedEvents()
	if len(evs) != 1 || evs[0].Details["kid"] != older || evs[0].Details["reason"] != "revoke" || evs[0].Actor.EntityID != "entity-alice" {
		t.Fatalf("revoked events = %+v", evs)
	}
	// It stays withdrawn across a reload, and a rotation does not bring it back.
	r := e.reloaded()
	r.ok(logical.UpdateOperation, "jwks/rotate", nil)
	for _, kid := range r.jwksKIDs() {
		if kid == older {
			t.Fatal("a withdrawn key is published again")
		}
	}
	r.userErr(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{"kid": older}, "not published")
}
