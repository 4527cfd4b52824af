package backend

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// reloaded returns a fresh backend over e's storage and clock, as Vault
// builds after a plugin reload: nothing cached, everything read back.
func (e *testEnv) reloaded() *testEnv {
	e.t.Helper()
	b := newBackend(e.clock)
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      logical.TestSystemView(),
		StorageView: e.storage,
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		e.t.Fatal(err)
	}
	b.logger = conf.Logger
	return &testEnv{t: e.t, b: b, storage: e.storage, clock: e.clock, ctx: e.ctx}
}

func TestConfigReadsBackExactlyAfterReload(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{
		"risk_tiers":        []string{"low=200d", "high=20d"},
		"default_risk_tier": "low",
		// Zero values that differ from the defaults must survive too.
		"review_period":        0,
		"leased_key_retention": 0,
		"default_grace_period": 0,
	})
	want := e.ok(logical.ReadOperation, "config", nil).Data
	e.userErr(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "a", "environment": "prod", "risk_tier": "medium"}, "risk_tier")

	r := e.reloaded()
	got := r.ok(logical.ReadOperation, "config", nil).Data
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config changed across a reload:\nbefore %v\nafter  %v", want, got)
	}
	tiers := got["risk_tiers"].(map[string]int64)
	if len(tiers) != 2 || tiers["low"] != int64(200*record.Day/time.Second) || tiers["high"] != int64(20*record.Day/time.Second) {
		t.Fatalf("risk_tiers after reload = %v", tiers)
	}
	r.userErr(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "a", "environment": "prod", "risk_tier": "medium"}, "risk_tier")
}
