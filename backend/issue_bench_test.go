package backend

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// slowStorage adds a fixed delay to every storage operation, standing in
// for the gRPC round trip from the plugin into Vault's storage that an
// in-memory storage does not have, and counts the operations.
type slowStorage struct {
	logical.Storage
	delay time.Duration
	ops   atomic.Int64
}

func (s *slowStorage) wait() {
	s.ops.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
}

func (s *slowStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.wait()
	return s.Storage.Get(ctx, key)
}

func (s *slowStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.wait()
	return s.Storage.List(ctx, prefix)
}

func (s *slowStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.wait()
	return s.Storage.Put(ctx, entry)
}

func (s *slowStorage) Delete(ctx context.Context, key string) error {
	s.wait()
	return s.Storage.Delete(ctx, key)
}

// BenchmarkIssueHandler measures issuance in the plugin alone (no Vault,
// no gRPC), as requests arrive: existence check, then the write. The
// inmem cases show the plugin's CPU per issuance; the rtt cases give every
// storage operation a delay like the round trip into Vault and issue from
// 8 goroutines, as make bench's clients do, which shows what the issuance
// path serialises. storage_ops/op counts the operations per issuance.
//
//	go test -run XXX -bench IssueHandler -cpuprofile cpu.out ./backend/
func BenchmarkIssueHandler(b *testing.B) {
	for _, tc := range []struct {
		name     string
		delay    time.Duration
		parallel int
	}{
		{"inmem", 0, 1},
		{"inmem-parallel8", 0, 8},
		{"rtt200us-parallel8", 200 * time.Microsecond, 8},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			be := newBackend(clock.NewFake(testStart))
			storage := &slowStorage{Storage: &logical.InmemStorage{}}
			if err := be.Setup(ctx, &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: storage}); err != nil {
				b.Fatal(err)
			}
			do := func(op logical.Operation, path string, data map[string]interface{}) {
				req := &logical.Request{Operation: op, Path: path, Data: data, Storage: storage, Connection: &logical.Connection{}}
				if op == logical.CreateOperation {
					if _, _, err := be.HandleExistenceCheck(ctx, req); err != nil {
						b.Fatalf("%s: existence check: %v", path, err)
					}
				}
				resp, err := be.HandleRequest(ctx, req)
				if err != nil || (resp != nil && resp.IsError()) {
					b.Fatalf("%s: %v %v", path, err, resp)
				}
			}
			const clients = 64
			for i := 0; i < clients; i++ {
				do(logical.CreateOperation, fmt.Sprintf("clients/c%d", i), map[string]interface{}{"owner": "o", "type": "internal"})
			}
			do(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
			storage.delay = tc.delay
			var next atomic.Int64
			issue := func() {
				i := next.Add(1)
				do(logical.CreateOperation, fmt.Sprintf("keys/c%d/k%d", i%clients, i), map[string]interface{}{"role": "r"})
			}
			b.ReportAllocs()
			ops0 := storage.ops.Load()
			b.ResetTimer()
			if tc.parallel > 1 {
				b.SetParallelism(tc.parallel) // goroutines per GOMAXPROCS
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						issue()
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					issue()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(storage.ops.Load()-ops0)/float64(b.N), "storage_ops/op")
		})
	}
}
