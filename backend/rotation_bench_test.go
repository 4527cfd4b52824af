package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Rotation engine benchmarks (SPEC §4): a tick with nothing due must cost
// the same at 100k keys as at 1k (O(due), not O(keys)), and 10k due keys
// must rotate within 60 s. `make bench-rotation` runs BenchmarkRotationReport
// and prints the two numbers.

const benchClients = 100

// newBenchBackend is a backend over in-memory storage with a fake clock,
// one role and benchClients clients, and n managed keys written straight to
// storage (issuing 100k keys through the API would only slow the setup).
// Key i is due at due(i). The mount then starts as a mount written by a
// version without the schedules' due index does: the one-time backfill
// gives every key its pointer, and the time returned is that backfill's.
func newBenchBackend(tb testing.TB, n int, due func(i int) time.Time) (*apikeysBackend, logical.Storage, *clock.Fake, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	fc := clock.NewFake(testStart)
	b := newBackend(fc)
	s := &logical.InmemStorage{}
	if err := b.Setup(ctx, &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: s}); err != nil {
		tb.Fatal(err)
	}
	do := func(path string, data map[string]interface{}) {
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: path, Data: data, Storage: s})
		if err != nil || (resp != nil && resp.IsError()) {
			tb.Fatalf("%s: %v %v", path, resp, err)
		}
	}
	do("roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "1h", "grace_period": "10m"})
	for c := 0; c < benchClients; c++ {
		do(fmt.Sprintf("clients/c%03d", c), map[string]interface{}{"owner": "team", "type": "internal"})
	}
	for i := 0; i < n; i++ {
		h := make([]byte, 32)
		if _, err := rand.Read(h); err != nil {
			tb.Fatal(err)
		}
		k := &record.Key{
			KeyID: fmt.Sprintf("kid_bench%08d", i), Client: fmt.Sprintf("c%03d", i%benchClients), Name: fmt.Sprintf("k%08d", i),
			Role: "r", Owner: "team", Scopes: []string{"orders:read"}, Environment: "prod", Retrievable: true,
			CreatedAt: testStart, LastRotatedAt: testStart, NextRotationAt: due(i),
			Versions: []*record.KeyVersion{{Version: 1, State: record.StateActive, HMAC: hex.EncodeToString(h), CreatedAt: testStart, ActivatedAt: testStart}},
		}
		if err := b.putKey(ctx, s, k); err != nil {
			tb.Fatal(err)
		}
		if err := b.putIndex(ctx, s, k.Versions[0].HMAC, record.IndexEntry{Client: k.Client, Name: k.Name, KeyID: k.KeyID, Version: 1}); err != nil {
			tb.Fatal(err)
		}
	}
	start := time.Now()
	if err := b.initRotation(ctx, s); err != nil {
		tb.Fatal(err)
	}
	if err := b.sched.rebuild.Wait(ctx); err != nil {
		tb.Fatal(err)
	}
	rebuild := time.Since(start)
	if got := b.sched.rotation.Len(); got != n {
		tb.Fatalf("rebuilt queue holds %d keys, want %d", got, n)
	}
	return b, s, fc, rebuild
}

// notDue spreads keys over the hour after testStart+1h.
func notDue(i int) time.Time { return testStart.Add(time.Hour + time.Duration(i%3600)*time.Second) }

// idleTickCost measures one tick with nothing due, in ns, as the median of
// several timed runs of many ticks.
func idleTickCost(tb testing.TB, b *apikeysBackend, s logical.Storage, ticks int) float64 {
	ctx := context.Background()
	var samples []float64
	for round := 0; round < 7; round++ {
		start := time.Now()
		for i := 0; i < ticks; i++ {
			st, err := b.runRotationTick(ctx, s)
			if err != nil || st.handled != 0 {
				tb.Fatalf("idle tick handled %+v %v", st, err)
			}
		}
		samples = append(samples, float64(time.Since(start).Nanoseconds())/float64(ticks))
	}
	sort.Float64s(samples)
	return samples[len(samples)/2]
}

// rotateAllDue runs ticks until nothing is due and returns the wall time.
func rotateAllDue(tb testing.TB, b *apikeysBackend, s logical.Storage, want int) (time.Duration, int) {
	ctx := context.Background()
	start := time.Now()
	rotated, ticks := 0, 0
	for {
		st, err := b.runRotationTick(ctx, s)
		if err != nil {
			tb.Fatal(err)
		}
		ticks++
		rotated += st.rotated
		if !st.leftover {
			break
		}
	}
	if rotated != want {
		tb.Fatalf("rotated %d keys, want %d", rotated, want)
	}
	return time.Since(start), ticks
}

func BenchmarkRotationTickIdle(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			be, s, _, _ := newBenchBackend(b, n, notDue)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := be.runRotationTick(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRotateDue10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		be, s, _, _ := newBenchBackend(b, 10000, func(int) time.Time { return testStart })
		b.StartTimer()
		rotateAllDue(b, be, s, 10000)
	}
}

// BenchmarkRotationReport prints the numbers; run it with
// -benchtime=1x (make bench-rotation).
func BenchmarkRotationReport(b *testing.B) {
	small, ss, _, _ := newBenchBackend(b, 1000, notDue)
	large, ls, _, rebuild := newBenchBackend(b, 100000, notDue)
	// Interleave the measurements so drift affects both alike.
	var c1k, c100k []float64
	for round := 0; round < 3; round++ {
		c1k = append(c1k, idleTickCost(b, small, ss, 200000))
		c100k = append(c100k, idleTickCost(b, large, ls, 200000))
	}
	sort.Float64s(c1k)
	sort.Float64s(c100k)
	ratio := c100k[1] / c1k[1]

	due, ds, _, _ := newBenchBackend(b, 10000, func(int) time.Time { return testStart })
	took, ticks := rotateAllDue(b, due, ds, 10000)

	fmt.Printf("tick_idle_1k_ns=%.0f\n", c1k[1])
	fmt.Printf("tick_idle_100k_ns=%.0f\n", c100k[1])
	fmt.Printf("tick_ratio_100k_1k=%.3f\n", ratio)
	fmt.Printf("rebuild_100k_seconds=%.2f\n", rebuild.Seconds())
	fmt.Printf("rotate_10k_seconds=%.2f (ticks=%d)\n", took.Seconds(), ticks)
	b.ReportMetric(ratio, "tick_ratio_100k_1k")
	b.ReportMetric(took.Seconds(), "rotate_10k_s")
	if ratio > 1.2 {
		b.Errorf("idle tick at 100k keys costs %.2f× the tick at 1k keys (limit 1.2)", ratio)
	}
	if took > 60*time.Second {
		b.Errorf("rotating 10k due keys took %v (limit 60s)", took)
	}
}
