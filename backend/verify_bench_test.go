package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// BenchmarkVerifyHandler measures the plugin-side cost of a warm verify
// against the info floor, without Vault and gRPC around them:
//
//	go test -run XXX -bench VerifyHandler -benchmem ./backend/
func BenchmarkVerifyHandler(b *testing.B) {
	ctx := context.Background()
	be := newBackend(clock.NewFake(testStart))
	storage := &logical.InmemStorage{}
	if err := be.Setup(ctx, &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: storage}); err != nil {
		b.Fatal(err)
	}
	do := func(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
		resp, err := be.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: storage, Connection: &logical.Connection{}})
		if err != nil || (resp != nil && resp.IsError()) {
			b.Fatalf("%s: %v %v", path, err, resp)
		}
		return resp
	}
	do(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "o", "type": "internal"})
	do(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	key := do(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)

	run := func(b *testing.B, op logical.Operation, path string, data map[string]interface{}) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			do(op, path, data)
		}
	}
	b.Run("info", func(b *testing.B) { run(b, logical.ReadOperation, "info", nil) })
	b.Run("verify", func(b *testing.B) { run(b, logical.UpdateOperation, "verify", map[string]interface{}{"key": key}) })
	b.Run("malformed", func(b *testing.B) {
		run(b, logical.UpdateOperation, "verify", map[string]interface{}{"key": "ak_prod_nope"})
	})
}
