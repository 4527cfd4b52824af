package backend

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestUsageBufferedThenFlushed(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	before := e.storageKeys()
	stored := func() *record.Key {
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
	if c := e.verifyCode(key, map[string]interface{}{"scope": "admin"}); c != record.CodeForbiddenScope {
		t.Fatal(c)
	}
	// No storage write per call.
	if after := stored(); len(e.storageKeys()) != len(before) || !after.LastUsedAt.Equal(keyBefore.LastUsedAt) || after.Usage != nil {
		t.Fatal("verify wrote to storage")
	}
	// Reads merge what is buffered.
	read := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data
	if read["last_used_at"] != apiTime(usedAt) {
		t.Fatalf("last_used_at = %v", read["last_used_at"])
	}
	usage := read["usage"].(map[string]interface{})
	counts := usage["verify_counts"].(map[string]uint64)
	if counts[record.OutcomeActive] != 4 || counts[record.CodeForbiddenScope] != 1 {
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
	if !k.LastUsedAt.Equal(usedAt) || !k.Version(1).LastVerifiedAt.Equal(usedAt) {
		t.Fatalf("flushed times: %v %v", k.LastUsedAt, k.Version(1).LastVerifiedAt)
	}
	if k.Usage == nil || k.Usage.Counts[record.OutcomeActive] != 4 || k.Usage.Counts[record.CodeForbiddenScope] != 1 || len(k.Usage.RecentSources) != 3 {
		t.Fatalf("flushed usage: %+v", k.Usage)
	}
	if n := len(e.b.cache.usage.entries); n != 0 {
		t.Fatalf("%d entries still buffered", n)
	}
	// Reads do not double count after the flush; new uses add up.
	e.clock.Advance(time.Minute)
	e.verifyCode(key, map[string]interface{}{"client_ip": "198.51.100.7"})
	usage = e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["usage"].(map[string]interface{})
	if c := usage["verify_counts"].(map[string]uint64); c[record.OutcomeActive] != 5 {
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
	if k := stored(); k.Usage.Counts[record.OutcomeActive] != 5 {
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
	if k.Usage.Counts[record.OutcomeActive] != 2 {
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

// loadKey is a key that other traffic verifies; it has no record, so its
// flush is a storage read and nothing else.
func loadKey(i int) *record.Key {
	return &record.Key{KeyID: fmt.Sprintf("kid_load%07d", i), Client: "load", Name: fmt.Sprint(i)}
}

// More distinct keys verified per minute than one flush used to write
// (5,000) filled the buffer within minutes; it then stayed full, later
// keys' uses were not recorded and the idle sweep revoked a key in use. A
// flush now takes on its whole backlog, so the buffer holds only one
// minute of traffic.
func TestUsageFlushKeepsUpWithSustainedLoad(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	key := e.issue("svc", "k", "r", nil)
	const perMinute = 25000 // 10 minutes of it pass 200,000 distinct keys
	req := &logical.Request{Storage: e.storage}
	var usedAt time.Time
	for m := 0; m < 10; m++ {
		e.clock.Advance(time.Minute)
		for i := 0; i < perMinute; i++ {
			e.b.cache.usage.record(loadKey(m*perMinute+i), 1, record.OutcomeActive, "", e.clock.Now())
		}
		if c := e.verifyCode(key, nil); c != "" {
			t.Fatalf("verify: %q", c)
		}
		usedAt = e.clock.Now()
		if err := e.b.flushUsage(e.ctx, req); err != nil {
			t.Fatal(err)
		}
		if n := len(e.b.cache.usage.entries); n != 0 {
			t.Fatalf("minute %d: %d keys still buffered after the flush", m, n)
		}
	}
	if k := e.issued("svc", "k"); !k.LastUsedAt.Equal(usedAt) {
		t.Fatalf("stored last use %v, want %v", k.LastUsedAt, usedAt)
	}
	// Created 65 minutes ago, used 55 minutes ago: not idle for 1h.
	e.clock.Advance(55 * time.Minute)
	e.tick()
	if k := e.issued("svc", "k"); k.Revoked {
		t.Fatalf("key used 55 minutes ago revoked: %s", k.RevokeReason)
	}
}

// A key verified while the buffer is full keeps its last use (spilled), so
// reads show it, a flush stores it and the idle sweep sees it.
func TestUsageBufferFullKeepsLastUse(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	key := e.issue("svc", "k", "r", nil)
	for i := 0; i < maxUsageEntries; i++ {
		e.b.cache.usage.record(loadKey(i), 1, record.OutcomeActive, "", e.clock.Now())
	}
	e.clock.Advance(40 * time.Minute)
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("verify: %q", c)
	}
	usedAt := e.clock.Now()
	if got := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["last_used_at"]; got != apiTime(usedAt) {
		t.Fatalf("last_used_at = %v, want %v", got, usedAt)
	}
	k := e.issued("svc", "k")
	if got := e.b.versionLastVerified(k, 1); !got.Equal(usedAt) {
		t.Fatalf("versionLastVerified = %v, want %v", got, usedAt)
	}
	// Used 30 minutes ago, created 70 minutes ago, idle_timeout 1h.
	e.clock.Advance(30 * time.Minute)
	e.tick()
	if k := e.issued("svc", "k"); k.Revoked {
		t.Fatalf("key verified 30 minutes ago was revoked as idle: %s", k.RevokeReason)
	}
}

// spillEnv is a test backend with a tiny usage buffer.
func spillEnv(t *testing.T, capacity, spill int) (*testEnv, *bytes.Buffer) {
	e := newTestEnv(t)
	var logs bytes.Buffer
	e.b.logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	e.b.cache.usage.capacity, e.b.cache.usage.spillCapacity = capacity, spill
	return e, &logs
}

func TestUsageSpillFlushedAndTakenOver(t *testing.T) {
	e, logs := spillEnv(t, 1, 10)
	e.setupClientRole("svc", "internal", "r", nil)
	a := e.issue("svc", "a", "r", nil)
	b := e.issue("svc", "b", "r", nil)
	e.verifyCode(a, nil) // takes the only entry
	e.clock.Advance(time.Minute)
	e.verifyCode(b, map[string]interface{}{"client_ip": "192.0.2.1"}) // spilled: last use only
	usedAt := e.clock.Now()
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	kb := e.issued("svc", "b")
	if !kb.LastUsedAt.Equal(usedAt) || !kb.Version(1).LastVerifiedAt.Equal(usedAt) {
		t.Fatalf("spilled use not stored: %v %v", kb.LastUsedAt, kb.Version(1).LastVerifiedAt)
	}
	u := e.b.cache.usage
	if len(u.entries)+len(u.spill)+u.queue.len() != 0 {
		t.Fatalf("buffer not drained: %d entries, %d spilled, %d queued", len(u.entries), len(u.spill), u.queue.len())
	}
	if !strings.Contains(logs.String(), "usage buffer full") {
		t.Fatalf("no warning about the full buffer in the log: %s", logs.String())
	}
	// A spilled key that finds room again moves into entries, keeping its
	// last use, and is flushed once.
	e.verifyCode(a, nil)
	e.clock.Advance(time.Minute)
	spilledAt := e.clock.Now()
	e.verifyCode(b, nil)
	u.mu.Lock()
	u.capacity = 2 // room again, as after a flush
	u.mu.Unlock()
	e.clock.Advance(time.Minute)
	e.verifyCode(b, map[string]interface{}{"scope": "admin"}) // a failed verify: counted, no use
	kid := e.issued("svc", "b").KeyID
	if got, _ := u.lastUses(kid, 1); got != spilledAt.UnixNano() {
		t.Fatalf("entry lost the spilled last use: %v", fromNanos(got))
	}
	if len(u.spill) != 0 || u.queue.len() != 2 {
		t.Fatalf("spill %d, queue %d: want the key moved, queued once", len(u.spill), u.queue.len())
	}
}

// Beyond the spill nothing per key is kept: usageTrustworthy, which the idle
// sweep consults before revoking, refuses any idle revocation until the
// lost use is older than the idle_timeout, and says so in the log once per
// flush period. lastUsed does not pretend the key was used.
func TestUsageLostDefersIdleRevocation(t *testing.T) {
	e, logs := spillEnv(t, 1, 1)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	keys := []string{e.issue("svc", "a", "r", nil), e.issue("svc", "b", "r", nil), e.issue("svc", "c", "r", nil)}
	e.clock.Advance(2 * time.Hour)
	for _, k := range keys {
		e.verifyCode(k, nil) // a: entry, b: spill, c: lost
	}
	lostAt := e.clock.Now()
	c := e.issued("svc", "c")
	if got := e.b.lastUsed(c); !got.IsZero() {
		t.Fatalf("lastUsed of the key whose use was lost = %v; it must not be made up", got)
	}
	now := lostAt.Add(59 * time.Minute)
	if e.b.usageTrustworthy(c, now, time.Hour) {
		t.Fatal("usage trusted for a 1h idle_timeout 59 minutes after a verify was lost")
	}
	if !e.b.usageTrustworthy(c, now, 58*time.Minute) {
		t.Fatal("a loss older than the idle_timeout still defers revocation")
	}
	if !e.b.usageTrustworthy(c, lostAt.Add(time.Hour), time.Hour) {
		t.Fatal("a loss defers revocation for longer than the idle_timeout")
	}
	if n := strings.Count(logs.String(), "revocation deferred"); n != 1 {
		t.Fatalf("%d deferral warnings, want 1 per flush period:\n%s", n, logs.String())
	}
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "idle_timeout revocations are deferred") {
		t.Fatalf("the flush did not report the lost verifies:\n%s", logs.String())
	}
	e.b.usageTrustworthy(c, now, time.Hour)
	if n := strings.Count(logs.String(), "revocation deferred"); n != 2 {
		t.Fatalf("%d deferral warnings after a flush, want 2", n)
	}
}

// A flush stops at its time budget; the rest, oldest first, is flushed by
// the next one.
func TestUsageFlushTimeBudget(t *testing.T) {
	e := newTestEnv(t)
	u := e.b.cache.usage
	var calls int
	u.flushLimits = usageFlushLimits{budget: time.Second, stopwatch: func() time.Time {
		// The start, the first chunk's check and one check per write of
		// that chunk take no time; then the budget is spent.
		calls++
		if calls > usageFlushChunk+2 {
			return testStart.Add(2 * time.Second)
		}
		return testStart
	}}
	n := usageFlushChunk + 100
	for i := 0; i < n; i++ {
		u.record(loadKey(i), 1, record.OutcomeActive, "", e.clock.Now())
	}
	req := &logical.Request{Storage: e.storage}
	if err := e.b.flushUsage(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := u.backlog(); got != 100 {
		t.Fatalf("backlog after a budget-limited flush = %d, want 100", got)
	}
	if _, ok := u.entries[loadKey(0).KeyID]; ok {
		t.Fatal("the oldest key was not flushed first")
	}
	calls = 0
	if err := e.b.flushUsage(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := u.backlog(); got != 0 {
		t.Fatalf("backlog after the next flush = %d", got)
	}
}

func TestIDQueueFIFOAndCompaction(t *testing.T) {
	var q idQueue
	next := 0
	for round := 0; round < 5; round++ {
		for i := 0; i < 3000; i++ {
			q.push(fmt.Sprint(round*3000 + i))
		}
		for i := 0; i < 2000; i++ {
			id, ok := q.pop()
			if !ok || id != fmt.Sprint(next) {
				t.Fatalf("pop = %q %v, want %d", id, ok, next)
			}
			next++
		}
		if len(q.items) > 2*q.len()+2048 {
			t.Fatalf("backing array %d for %d queued", len(q.items), q.len())
		}
	}
	for q.len() > 0 {
		q.pop()
	}
	if _, ok := q.pop(); ok || q.items != nil {
		t.Fatal("drained queue kept its array")
	}
}

// BenchmarkUsageRecord measures verify's usage recording: a key with an
// entry, and keys that find the buffer full (spilled, then lost).
func BenchmarkUsageRecord(b *testing.B) {
	now := testStart
	b.Run("entry", func(b *testing.B) {
		u := newUsageTracker()
		k := loadKey(0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.record(k, 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
	full := func(spill int) *usageTracker {
		u := newUsageTracker()
		u.capacity, u.spillCapacity = 1, spill
		u.record(loadKey(-1), 1, record.OutcomeActive, "", now)
		return u
	}
	keys := make([]*record.Key, 1000)
	for i := range keys {
		keys[i] = loadKey(i)
	}
	b.Run("spilled", func(b *testing.B) {
		u := full(len(keys))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.record(keys[i%len(keys)], 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
	b.Run("lost", func(b *testing.B) {
		u := full(0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.record(keys[i%len(keys)], 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
}

// Verifies racing flushes: nothing is counted twice or lost, and the
// buffer drains (run with -race).
func TestUsageConcurrentVerifyAndFlush(t *testing.T) {
	for _, tc := range []struct {
		name            string
		capacity, spill int
	}{{"roomy", maxUsageEntries, maxSpillEntries}, {"spilling", 2, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := spillEnv(t, tc.capacity, tc.spill)
			e.setupClientRole("svc", "internal", "r", nil)
			var keys []string
			for i := 0; i < 6; i++ {
				keys = append(keys, e.issue("svc", fmt.Sprint("k", i), "r", nil))
			}
			const workers, per = 4, 300
			done := make(chan struct{})
			for w := 0; w < workers; w++ {
				go func(w int) {
					defer func() { done <- struct{}{} }()
					for i := 0; i < per; i++ {
						e.verifyCode(keys[(w+i)%len(keys)], nil)
					}
				}(w)
			}
			req := &logical.Request{Storage: e.storage}
			for running := workers; running > 0; {
				select {
				case <-done:
					running--
				default:
					if err := e.b.flushUsage(e.ctx, req); err != nil {
						t.Error(err)
					}
				}
			}
			if err := e.b.flushUsage(e.ctx, req); err != nil {
				t.Fatal(err)
			}
			u := e.b.cache.usage
			if len(u.entries)+len(u.spill)+u.queue.len() != 0 {
				t.Fatalf("not drained: %d entries, %d spilled, %d queued", len(u.entries), len(u.spill), u.queue.len())
			}
			var total uint64
			for i := range keys {
				k := e.issued("svc", fmt.Sprint("k", i))
				if k.LastUsedAt.IsZero() {
					t.Fatalf("key %d: no last use stored", i)
				}
				if k.Usage != nil {
					total += k.Usage.Counts[record.OutcomeActive]
				}
			}
			// With room every verify is counted; spilling loses counts
			// (never last uses), but never counts one twice.
			if tc.name == "roomy" && total != workers*per {
				t.Fatalf("stored %d successful verifies, want %d", total, workers*per)
			}
			if total > workers*per {
				t.Fatalf("stored %d successful verifies of %d: counted twice", total, workers*per)
			}
		})
	}
}

// The idle sweep does not revoke a key while verify usage may have been
// lost (both usage buffers full): its last use is unknown. The deferral
// ends once the loss is older than the idle_timeout.
func TestIdleSweepDefersWhileUsageLost(t *testing.T) {
	e, _ := spillEnv(t, 1, 1)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	keys := []string{e.issue("svc", "a", "r", nil), e.issue("svc", "b", "r", nil), e.issue("svc", "c", "r", nil)}
	e.clock.Advance(2 * time.Hour)
	for _, k := range keys {
		e.verifyCode(k, nil) // a: buffered, b: spilled, c: lost
	}
	e.clock.Advance(30 * time.Minute)
	e.tick()
	if k := e.issued("svc", "c"); k.Revoked {
		t.Fatalf("a key whose use was lost 30m ago was revoked as idle: %s", k.RevokeReason)
	}
	e.clock.Advance(31 * time.Minute)
	e.tick()
	if !e.issued("svc", "c").Revoked {
		t.Fatal("the deferral never ends")
	}
}

// On slow storage a flush stops within its budget, checking it before each
// key rather than once per chunk of 500.
func TestUsageFlushBudgetCheckedPerWrite(t *testing.T) {
	e := newTestEnv(t)
	u := e.b.cache.usage
	var now time.Duration
	u.flushLimits = usageFlushLimits{budget: 20 * time.Second, stopwatch: func() time.Time { return testStart.Add(now) }}
	slow := &slowStorage{Storage: e.storage, tick: func() { now += 100 * time.Millisecond }}
	for i := 0; i < usageFlushChunk; i++ {
		u.record(loadKey(i), 1, record.OutcomeActive, "", e.clock.Now())
	}
	if err := e.b.flushUsage(e.ctx, &logical.Request{Storage: slow}); err != nil {
		t.Fatal(err)
	}
	if now > 21*time.Second {
		t.Fatalf("flush spent %s of storage time, budget 20s", now)
	}
	if now < 19*time.Second {
		t.Fatalf("flush stopped after %s of storage time, well before its 20s budget", now)
	}
	if got := u.backlog(); got == 0 {
		t.Fatal("a flush over slow storage wrote everything past its budget")
	}
}

// slowStorage calls tick on every read and write, so a test can charge
// storage time.
type slowStorage struct {
	logical.Storage
	tick func()
}

func (s *slowStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.tick()
	return s.Storage.Get(ctx, key)
}

func (s *slowStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	s.tick()
	return s.Storage.Put(ctx, e)
}

// When Vault stops the mount on this node (step-down, seal), buffered
// verify usage is flushed, so the next active node's idle sweep sees a
// key used since the last periodic flush.
func TestUsageFlushedWhenMountStops(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	key := e.issue("svc", "k", "r", nil)
	e.clock.Advance(59 * time.Minute)
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("verify = %q", c)
	}
	e.b.Cleanup(e.ctx) // the node steps down before its next flush

	// The next active node: a new backend over the same storage.
	next := newBackend(e.clock)
	if err := next.Setup(e.ctx, &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	if err := next.governanceTick(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	k, err := next.getKey(e.ctx, e.storage, "svc", "k")
	if err != nil || k.Revoked {
		t.Fatalf("a key used 2 minutes before was revoked as idle after a step-down: %v %v", k.RevokeReason, err)
	}
}
