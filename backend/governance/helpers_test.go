package governance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var testStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const (
	testKeyPrefix    = "keys/"
	testClientPrefix = "clients/"
	testAlertPrefix  = "alerts/"
)

// testAlerts stores alerts as JSON under testAlertPrefix.
type testAlerts struct{}

func (testAlerts) AlertIDs(ctx context.Context, s logical.Storage) ([]string, error) {
	return s.List(ctx, testAlertPrefix)
}

func (testAlerts) Alert(ctx context.Context, s logical.Storage, id string) (*record.Alert, error) {
	entry, err := s.Get(ctx, testAlertPrefix+id)
	if err != nil || entry == nil {
		return nil, err
	}
	var a record.Alert
	return &a, entry.DecodeJSON(&a)
}

// env is a runtime over in-memory storage, with a lifecycle log on a fake
// clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	s     logical.Storage
	clock *clock.Fake
	log   *eventlog.Log
	r     *Runtime
	opts  Options
}

func newEnv(t *testing.T, opts Options) *env {
	e := &env{t: t, ctx: context.Background(), s: &logical.InmemStorage{}, clock: clock.NewFake(testStart), opts: opts}
	e.log = eventlog.New(e.clock, 512<<10)
	e.restart()
	return e
}

// restart gives the env a new runtime on the same storage, as a new active
// node would have.
func (e *env) restart() {
	e.r = New(Sources{Log: e.log, KeyPrefix: testKeyPrefix, ClientPrefix: testClientPrefix, Alerts: testAlerts{}}, e.opts)
}

func (e *env) put(key string, v any) {
	e.t.Helper()
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.Put(e.ctx, entry); err != nil {
		e.t.Fatal(err)
	}
}

// putKeys stores keys "client/name" and their clients' records (the
// values do not matter to the walker).
func (e *env) putKeys(keys ...string) {
	for _, k := range keys {
		client, _, _ := strings.Cut(k, "/")
		e.put(testClientPrefix+client, map[string]string{"name": client})
		e.put(testKeyPrefix+k, map[string]string{"name": k})
	}
}

// update runs fn under Update and fails the test on an error.
func (e *env) update(fn func(*State) error) {
	e.t.Helper()
	if err := e.r.Update(e.ctx, e.s, fn); err != nil {
		e.t.Fatal(err)
	}
}

// sweep runs one sweep step and returns the keys visited, as
// "client/name".
func (e *env) sweep() []string {
	e.t.Helper()
	var visited []string
	e.update(func(st *State) error {
		return e.r.Sweep(e.ctx, e.s, st, func(client, name string) error {
			visited = append(visited, client+"/"+name)
			return nil
		})
	})
	return visited
}

func (e *env) state() *State {
	e.t.Helper()
	st, err := e.r.Snapshot(e.ctx, e.s)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) list(prefix string) []string {
	e.t.Helper()
	keys, err := e.s.List(e.ctx, prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

func join(keys []string) string { return strings.Join(keys, " ") }
