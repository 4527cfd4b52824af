package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestUsageBufferedThenFlushed(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	before := e.storageKeys()
	stored := func() *Key {
		k, err := e.b.getKey(e.ctx, e.storage, "svc", "k")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyBefore := stored()

	e.clock.Advance(time.Minute)
	usedAt := e.clock.Now()
	for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.1", "::ffff:192.0.2.3"} {
		if c := e.verifyCode(key, map[string]interface{}{"client_ip": ip}); c != "" {
			t.Fatalf("verify %d: %q", i, c)
		}
	}
	if c := e.verifyCode(key, map[string]interface{}{"scope": "admin"}); c != codeForbiddenScope {
		t.Fatal(c)
	}
	// No storage write per call.
	if after := stored(); len(e.storageKeys()) != len(before) || !after.LastUsedAt.Equal(keyBefore.LastUsedAt) || after.Usage != nil {
		t.Fatal("verify wrote to storage")
	}
	// Reads merge what is buffered.
	read := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data
	if read["last_used_at"] != usedAt {
		t.Fatalf("last_used_at = %v", read["last_used_at"])
	}
	usage := read["usage"].(map[string]interface{})
	counts := usage["verify_counts"].(map[string]uint64)
	if counts[outcomeActive] != 4 || counts[codeForbiddenScope] != 1 {
		t.Fatalf("counts = %v", counts)
	}
	if src := usage["recent_sources"].([]string); len(src) != 3 || src[0] != "192.0.2.3" || src[1] != "192.0.2.1" {
		t.Fatalf("recent_sources = %v", src)
	}
	if got := e.b.versionLastVerified(stored(), 1); !got.Equal(usedAt) {
		t.Fatalf("versionLastVerified = %v", got)
	}

	// Flush: one write per key, then nothing buffered.
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	k := stored()
	if !k.LastUsedAt.Equal(usedAt) || !k.version(1).LastVerifiedAt.Equal(usedAt) {
		t.Fatalf("flushed times: %v %v", k.LastUsedAt, k.version(1).LastVerifiedAt)
	}
	if k.Usage == nil || k.Usage.Counts[outcomeActive] != 4 || k.Usage.Counts[codeForbiddenScope] != 1 || len(k.Usage.RecentSources) != 3 {
		t.Fatalf("flushed usage: %+v", k.Usage)
	}
	if n := len(e.b.cache.usage.entries); n != 0 {
		t.Fatalf("%d entries still buffered", n)
	}
	// Reads do not double count after the flush; new uses add up.
	e.clock.Advance(time.Minute)
	e.verifyCode(key, map[string]interface{}{"client_ip": "198.51.100.7"})
	usage = e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["usage"].(map[string]interface{})
	if c := usage["verify_counts"].(map[string]uint64); c[outcomeActive] != 5 {
		t.Fatalf("counts after flush = %v", c)
	}
	if src := usage["recent_sources"].([]string); len(src) != 4 || src[0] != "198.51.100.7" {
		t.Fatalf("sources after flush = %v", src)
	}
	// A flush of nothing writes nothing.
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if k := stored(); k.Usage.Counts[outcomeActive] != 5 {
		t.Fatalf("counts after second flush = %v", k.Usage.Counts)
	}
}

func TestUsageRecordedDuringFlushIsKept(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	e.verifyCode(key, nil)
	snaps := e.b.cache.usage.snapshots(10)
	if len(snaps) != 1 {
		t.Fatalf("snapshots = %d", len(snaps))
	}
	// A verify lands between the snapshot and the end of its flush.
	e.verifyCode(key, nil)
	if err := e.b.persistUsage(e.ctx, e.storage, snaps[0]); err != nil {
		t.Fatal(err)
	}
	e.b.cache.usage.flushed(snaps[0])
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	k, _ := e.b.getKey(e.ctx, e.storage, "svc", "k")
	if k.Usage.Counts[outcomeActive] != 2 {
		t.Fatalf("counts = %v, want 2 active", k.Usage.Counts)
	}
}

func TestInventoryUnusedForSeesBufferedUse(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	used := e.issue("svc", "used", "r", nil)
	e.issue("svc", "idle", "r", nil)
	e.clock.Advance(10 * 24 * time.Hour)
	e.verifyCode(used, nil)
	inv := e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"unused_for": "168h"}).Data["keys"]
	items := inv.([]map[string]interface{})
	if len(items) != 1 || items[0]["name"] != "idle" {
		t.Fatalf("unused_for=7d lists %v", items)
	}
}

func TestRateLimiterWindowsAndPrune(t *testing.T) {
	r := newRateLimiter()
	now := testStart
	for i := 0; i < 3; i++ {
		if !r.allow("a", 3, time.Minute, now) {
			t.Fatalf("call %d refused", i)
		}
	}
	if r.allow("a", 3, time.Minute, now.Add(59*time.Second)) {
		t.Fatal("4th call in the window allowed")
	}
	if !r.allow("b", 1, time.Minute, now) {
		t.Fatal("keys share a window")
	}
	if !r.allow("a", 3, time.Minute, now.Add(time.Minute)) {
		t.Fatal("new window refused")
	}
	r.prune(now.Add(2 * time.Minute))
	if len(r.windows) != 0 {
		t.Fatalf("prune left %d windows", len(r.windows))
	}
}

func TestPushSourceBounded(t *testing.T) {
	var list []string
	for i := 0; i < 20; i++ {
		list = pushSource(list, string(rune('a'+i)))
	}
	list = pushSource(list, "p")
	if len(list) != maxRecentSources || list[0] != "p" || list[1] != "t" {
		t.Fatalf("list = %v", list)
	}
	if canonicalSource("not-an-ip") != "" || canonicalSource("::ffff:10.0.0.1") != "10.0.0.1" || canonicalSource("10.0.0.2:443") != "10.0.0.2" {
		t.Fatal("canonicalSource")
	}
}

func TestUsageEntryVersionSlots(t *testing.T) {
	var e usageEntry
	e.verified(1, 10)
	e.verified(2, 20)
	e.verified(1, 30)
	e.verified(3, 40)
	e.verified(4, 50) // evicts the least recent: version 2
	want := map[int]int64{1: 30, 2: 0, 3: 40, 4: 50}
	for v, at := range want {
		if got := e.lastVerified(v); got != at {
			t.Errorf("version %d: %d, want %d", v, got, at)
		}
	}
	e.verified(3, 35) // older than known: kept
	if e.lastVerified(3) != 40 {
		t.Errorf("an older time replaced a newer one")
	}
}
