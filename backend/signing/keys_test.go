package signing

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var systemActor = record.Actor{Type: "system"}

// events is an Appender that keeps what it is given.
type events struct {
	mu   sync.Mutex
	list []eventlog.Event
	fail error
}

func (l *events) Append(_ context.Context, _ logical.Storage, ev eventlog.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.list = append(l.list, ev)
	return nil
}

func (l *events) of(typ string) []eventlog.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []eventlog.Event
	for _, ev := range l.list {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

type env struct {
	t           *testing.T
	ctx         context.Context
	keys        *Keys
	storage     *logical.InmemStorage
	clock       *clock.Fake
	log         *events
	cfg         *record.Config
	configReads int
}

func newEnv(t *testing.T, period, tokenTTL time.Duration) *env {
	e := &env{t: t, ctx: context.Background(), storage: &logical.InmemStorage{}, clock: clock.NewFake(start), log: &events{}}
	e.cfg = record.DefaultConfig()
	e.cfg.SigningKeyRotationPeriod = period
	e.cfg.TokenTTL = tokenTTL
	e.keys = New(Deps{
		Clock: e.clock,
		Log:   e.log,
		Config: func(context.Context, logical.Storage) (*record.Config, error) {
			e.configReads++
			return e.cfg, nil
		},
		System:        systemActor,
		MaxEntryBytes: 512 << 10,
	})
	return e
}

func (e *env) read() *jwtsign.KeySet {
	e.t.Helper()
	set, err := e.keys.Read(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	return set
}

func (e *env) tick() {
	e.t.Helper()
	if err := e.keys.Tick(e.ctx, e.storage); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rotate() {
	e.t.Helper()
	if _, _, _, err := e.keys.Rotate(e.ctx, e.storage, e.cfg, alice, false); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) published() []string {
	e.t.Helper()
	var kids []string
	for _, p := range e.read().Published(e.clock.Now()) {
		kids = append(kids, p.KID)
	}
	return kids
}

func (e *env) stored() []byte {
	e.t.Helper()
	entry, err := e.storage.Get(e.ctx, "signing/keys")
	if err != nil || entry == nil {
		e.t.Fatalf("signing/keys: %v %v", entry, err)
	}
	return entry.Value
}

var alice = Origin{Actor: record.Actor{Type: "entity", EntityID: "entity-alice"}, RequestID: "req-1"}

// The set is one entry, signing/keys, holding jwtsign.KeySet's JSON: the
// format existing mounts hold.
func TestStoredAtSigningKeysAsKeySetJSON(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	if set := e.read(); set.Current != nil || set.Next != nil || len(set.Previous) != 0 {
		t.Fatalf("a mount without a key reads %+v", set)
	}
	if keys, _ := e.storage.List(e.ctx, ""); len(keys) != 0 {
		t.Fatalf("a read wrote %v", keys)
	}
	if err := e.keys.Ensure(e.ctx, e.storage); err != nil {
		t.Fatal(err)
	}
	e.rotate()
	e.clock.Advance(30 * time.Minute)
	e.tick() // publishes the next key
	raw := e.stored()
	want, err := json.Marshal(e.read())
	if err != nil {
		t.Fatal(err)
	}
	// Vault's JSON encoder ends the value with a newline.
	if string(raw) != string(want)+"\n" {
		t.Fatalf("stored %s\nwant    %s", raw, want)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"current", "next", "previous"}) {
		t.Fatalf("top-level fields %v", names)
	}
	if keys, _ := e.storage.List(e.ctx, ""); !reflect.DeepEqual(keys, []string{"signing/"}) {
		t.Fatalf("storage keys %v", keys)
	}
}

// Ensure creates the first key once, as the system, and reads the config
// only when it has a key to create.
func TestEnsureCreatesTheFirstKeyOnce(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	for i := 0; i < 2; i++ {
		if err := e.keys.Ensure(e.ctx, e.storage); err != nil {
			t.Fatal(err)
		}
	}
	if e.configReads != 1 {
		t.Fatalf("config read %d times, want once", e.configReads)
	}
	evs := e.log.of(eventlog.SigningKeyRotated)
	if len(evs) != 1 || evs[0].Details["reason"] != "first key" || evs[0].Details["previous_kid"] != "" ||
		evs[0].Actor != systemActor || evs[0].RequestID != "" {
		t.Fatalf("rotated events %+v", evs)
	}
	if _, ok := evs[0].Details["revoke_previous"]; ok {
		t.Fatal("a first key logs revoke_previous")
	}
	if cur := e.read().Current; cur == nil || cur.KID != evs[0].Details["kid"] || !cur.CreatedAt.Equal(start) {
		t.Fatalf("current %+v", cur)
	}
}

// The tick publishes the next key half the period ahead, promotes it at
// the period, keeps the outgoing key for token_ttl and then prunes it.
func TestTickPublishesAheadRotatesAndPrunes(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	e.tick() // a missing key is created
	k1 := e.read().Current.KID
	e.clock.Advance(29 * time.Minute)
	e.tick()
	if got := e.published(); !reflect.DeepEqual(got, []string{k1}) {
		t.Fatalf("before the lead: %v", got)
	}
	e.clock.Advance(time.Minute)
	e.tick()
	set := e.read()
	if set.Next == nil || set.Current.KID != k1 {
		t.Fatalf("after the lead: %+v", set)
	}
	k2 := set.Next.KID
	pub := e.log.of(eventlog.SigningKeyPublished)
	if len(pub) != 1 || pub[0].Details["kid"] != k2 || pub[0].Details["current_kid"] != k1 ||
		pub[0].Details["signs_from_about"] != start.Add(time.Hour).Format(time.RFC3339) || pub[0].Actor != systemActor {
		t.Fatalf("published events %+v", pub)
	}
	// Current signs with the current key until the period is over.
	if cur, err := e.keys.Current(e.ctx, e.storage, e.cfg); err != nil || cur.Current.KID != k1 {
		t.Fatalf("signer before the period: %v", err)
	}
	e.clock.Advance(30 * time.Minute)
	e.tick()
	if got := e.published(); !reflect.DeepEqual(got, []string{k2, k1}) {
		t.Fatalf("after the rotation: %v, want %v", got, []string{k2, k1})
	}
	rot := e.log.of(eventlog.SigningKeyRotated)
	last := rot[len(rot)-1]
	if last.Details["reason"] != "scheduled" || last.Details["previous_kid"] != k1 || last.Details["revoke_previous"] != "false" ||
		last.Details["previous_published_until"] != e.clock.Now().Add(5*time.Minute).Format(time.RFC3339) {
		t.Fatalf("scheduled rotation event %+v", last)
	}
	e.clock.Advance(5 * time.Minute)
	if got := e.published(); !reflect.DeepEqual(got, []string{k2}) {
		t.Fatalf("after token_ttl: %v", got)
	}
	if len(e.read().Previous) != 1 {
		t.Fatal("the expired key left storage before the tick")
	}
	e.tick()
	if n := len(e.read().Previous); n != 0 {
		t.Fatalf("%d previous keys stored after the tick", n)
	}
}

// A due rotation without a next key published long enough publishes one
// and keeps signing with the current key for jwtsign.MinPrepublished.
func TestDueRotationWaitsForThePublishedNextKey(t *testing.T) {
	e := newEnv(t, 48*time.Hour, 5*time.Minute)
	e.tick()
	k1 := e.read().Current.KID
	e.clock.Advance(48 * time.Hour) // the node missed the lead
	cur, err := e.keys.Current(e.ctx, e.storage, e.cfg)
	if err != nil || cur.Current.KID != k1 || cur.Next == nil {
		t.Fatalf("due without a next key: %+v %v", cur, err)
	}
	next := cur.Next.KID
	e.clock.Advance(jwtsign.MinPrepublished(e.cfg.SigningKeyRotationPeriod) - time.Second)
	e.tick()
	if got := e.read().Current.KID; got != k1 {
		t.Fatal("the next key signs before verifiers had it long enough")
	}
	e.clock.Advance(time.Second)
	e.tick()
	if got := e.read().Current.KID; got != next {
		t.Fatalf("signer %s, want the published next key %s", got, next)
	}
}

// Concurrent token exchanges that find the key due rotate it once.
func TestConcurrentCurrentRotatesOnce(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	var wg sync.WaitGroup
	kids := make([]string, 8)
	for i := range kids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			set, err := e.keys.Current(e.ctx, e.storage, e.cfg)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = set.Current.KID
		}(i)
	}
	wg.Wait()
	for _, kid := range kids {
		if kid != kids[0] {
			t.Fatalf("callers signed with different keys: %v", kids)
		}
	}
	if n := len(e.log.of(eventlog.SigningKeyRotated)); n != 1 {
		t.Fatalf("%d rotations, want 1", n)
	}
}

// Rotate with revokePrevious makes a fresh key current and withdraws
// every other key at once, logged by the caller.
func TestRotateRevokePreviousWithdrawsEveryOtherKey(t *testing.T) {
	e := newEnv(t, 4*time.Hour, 3*time.Hour)
	e.tick()
	e.rotate()
	e.clock.Advance(2 * time.Hour)
	e.tick() // the next key is published
	before := e.published()
	if len(before) != 3 {
		t.Fatalf("published before = %v", before)
	}
	set, old, withdrawn, err := e.keys.Rotate(e.ctx, e.storage, e.cfg, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	if old != before[0] || !reflect.DeepEqual(withdrawn, before) {
		t.Fatalf("rotated out %s, withdrew %v; published before %v", old, withdrawn, before)
	}
	for _, kid := range before {
		if set.Current.KID == kid {
			t.Fatal("revoke_previous reused a stored key")
		}
	}
	if got := e.published(); !reflect.DeepEqual(got, []string{set.Current.KID}) {
		t.Fatalf("published after = %v", got)
	}
	rot := e.log.of(eventlog.SigningKeyRotated)
	last := rot[len(rot)-1]
	if last.Details["reason"] != "manual" || last.Details["revoke_previous"] != "true" || last.Actor != alice.Actor || last.RequestID != "req-1" ||
		last.Details["previous_published_until"] != e.clock.Now().Format(time.RFC3339) {
		t.Fatalf("rotation event %+v", last)
	}
	var logged []string
	for _, ev := range e.log.of(eventlog.SigningKeyRevoked) {
		if ev.Details["reason"] != "rotate revoke_previous" || ev.Details["current_kid"] != set.Current.KID || ev.Actor != alice.Actor {
			t.Fatalf("revoked event %+v", ev)
		}
		logged = append(logged, ev.Details["kid"])
	}
	if !reflect.DeepEqual(logged, before) {
		t.Fatalf("logged %v, want %v", logged, before)
	}
}

// Withdraw deletes named keys; a refusal changes nothing, logs nothing and
// says why through jwtsign's errors.
func TestWithdraw(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	e.tick()
	e.rotate()
	e.rotate()
	all := e.published()
	cur, newer, older := all[0], all[1], all[2]
	raw := e.stored()
	for _, c := range []struct {
		kids []string
		want error
	}{
		{[]string{cur}, jwtsign.ErrCurrentKey},
		{[]string{older, "nope"}, jwtsign.ErrNotPublished},
	} {
		set, err := e.keys.Withdraw(e.ctx, e.storage, alice, c.kids)
		if !errors.Is(err, c.want) || set == nil || set.Current.KID != cur {
			t.Fatalf("Withdraw(%v) = %v, %v", c.kids, set, err)
		}
	}
	if string(e.stored()) != string(raw) || len(e.log.of(eventlog.SigningKeyRevoked)) != 0 {
		t.Fatal("a refused withdrawal changed something")
	}
	set, err := e.keys.Withdraw(e.ctx, e.storage, alice, []string{older})
	if err != nil || set.Current.KID != cur {
		t.Fatalf("withdraw: %v", err)
	}
	if got := e.published(); !reflect.DeepEqual(got, []string{cur, newer}) {
		t.Fatalf("published after = %v", got)
	}
	evs := e.log.of(eventlog.SigningKeyRevoked)
	if len(evs) != 1 || evs[0].Details["kid"] != older || evs[0].Details["reason"] != "revoke" ||
		evs[0].Details["current_kid"] != cur || evs[0].Actor != alice.Actor || evs[0].RequestID != "req-1" {
		t.Fatalf("revoked events %+v", evs)
	}
}

// NoteTokenTTL keeps the longest token_ttl the current key signed under,
// so a key rotated out after token_ttl was lowered stays published that
// long.
func TestNoteTokenTTLKeepsTheLongestLifetime(t *testing.T) {
	e := newEnv(t, 24*time.Hour, time.Hour)
	if err := e.keys.NoteTokenTTL(e.ctx, e.storage, time.Hour); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(e.ctx, ""); len(keys) != 0 {
		t.Fatal("noting a token_ttl without a key wrote storage")
	}
	e.tick()
	old := e.read().Current.KID
	for _, ttl := range []time.Duration{time.Hour, 10 * time.Minute} {
		if err := e.keys.NoteTokenTTL(e.ctx, e.storage, ttl); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.read().Current.MaxTokenTTL; got != time.Hour {
		t.Fatalf("MaxTokenTTL = %s", got)
	}
	e.cfg.TokenTTL = 10 * time.Second
	e.rotate()
	e.clock.Advance(time.Hour - time.Second)
	if got := e.published(); len(got) != 2 || got[1] != old {
		t.Fatalf("the old key left before the tokens it signed under 1h expired: %v", got)
	}
	e.clock.Advance(time.Second)
	if got := e.published(); len(got) != 1 {
		t.Fatalf("the old key outlived its tokens: %v", got)
	}
}

// A set above the mount's record bound is refused, not handed to storage.
func TestPutRefusesAnOversizedSet(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	e.keys.maxEntryBytes = 64
	err := e.keys.Ensure(e.ctx, e.storage)
	if !errors.Is(err, errTooLarge) || !strings.Contains(err.Error(), "storing signing keys") {
		t.Fatalf("err = %v", err)
	}
	if keys, _ := e.storage.List(e.ctx, ""); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
	if n := len(e.log.list); n != 0 {
		t.Fatalf("%d events for a change not stored", n)
	}
}

// A change whose log entry cannot be appended fails the caller.
func TestLogFailureIsReturned(t *testing.T) {
	e := newEnv(t, time.Hour, 5*time.Minute)
	e.log.fail = errors.New("log unavailable")
	if err := e.keys.Ensure(e.ctx, e.storage); !errors.Is(err, e.log.fail) {
		t.Fatalf("err = %v", err)
	}
}
