package backend

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/usage"
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
	if got := e.b.cache.usage.VersionLastVerified(stored(), 1); !got.Equal(usedAt) {
		t.Fatalf("VersionLastVerified = %v", got)
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
	if n, _, _ := e.b.cache.usage.Buffered(); n != 0 {
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
	var snaps int
	err := e.b.cache.usage.Flush(e.ctx, func(sn usage.Snapshot) error {
		// A verify lands between the snapshot and the end of its flush.
		if snaps++; snaps == 1 {
			e.verifyCode(key, nil)
		}
		return e.b.persistUsage(e.ctx, e.storage, sn)
	})
	if err != nil || snaps != 1 {
		t.Fatalf("snapshots = %d, error %v", snaps, err)
	}
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

// loadKey is a key that other traffic verifies; it has no record, so its
// flush is a storage read and nothing else.
func loadKey(i int) *record.Key {
	return &record.Key{KeyID: fmt.Sprintf("kid_load%07d", i), Client: "load", Name: fmt.Sprint(i)}
}

// A flush takes on its whole backlog, so the buffer holds only one minute
// of traffic. A flush writing a fixed number of keys (say 5,000) would let
// a sustained load of more distinct keys per minute fill the buffer within
// minutes and keep it full: later keys' uses would not be recorded and the
// idle sweep would revoke a key in use.
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
			e.b.cache.usage.Record(loadKey(m*perMinute+i), 1, record.OutcomeActive, "", e.clock.Now())
		}
		if c := e.verifyCode(key, nil); c != "" {
			t.Fatalf("verify: %q", c)
		}
		usedAt = e.clock.Now()
		if err := e.b.flushUsage(e.ctx, req); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := e.b.cache.usage.Buffered(); n != 0 {
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
	for i := 0; i < usage.MaxEntries; i++ {
		e.b.cache.usage.Record(loadKey(i), 1, record.OutcomeActive, "", e.clock.Now())
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
	if got := e.b.cache.usage.VersionLastVerified(k, 1); !got.Equal(usedAt) {
		t.Fatalf("VersionLastVerified = %v, want %v", got, usedAt)
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
	e.b.cache.usage.SetLogger(e.b.logger)
	e.b.cache.usage.SetCapacity(capacity, spill)
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
	if entries, spilled, queued := u.Buffered(); entries+spilled+queued != 0 {
		t.Fatalf("buffer not drained: %d entries, %d spilled, %d queued", entries, spilled, queued)
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
	u.SetCapacity(2, 10) // room again, as after a flush
	e.clock.Advance(time.Minute)
	e.verifyCode(b, map[string]interface{}{"scope": "admin"}) // a failed verify: counted, no use
	if got := u.LastUsed(e.issued("svc", "b")); !got.Equal(spilledAt) {
		t.Fatalf("entry lost the spilled last use: %v", got)
	}
	if _, spilled, queued := u.Buffered(); spilled != 0 || queued != 2 {
		t.Fatalf("spill %d, queue %d: want the key moved, queued once", spilled, queued)
	}
}

// Beyond the spill nothing per key is kept: Trustworthy, which the idle
// sweep consults before revoking, refuses any idle revocation until the
// lost use is older than the idle_timeout, and says so in the log once per
// flush period. LastUsed does not pretend the key was used.
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
	if got := e.b.cache.usage.LastUsed(c); !got.IsZero() {
		t.Fatalf("lastUsed of the key whose use was lost = %v; it must not be made up", got)
	}
	now := lostAt.Add(59 * time.Minute)
	if e.b.cache.usage.Trustworthy(c, now, time.Hour) {
		t.Fatal("usage trusted for a 1h idle_timeout 59 minutes after a verify was lost")
	}
	if !e.b.cache.usage.Trustworthy(c, now, 58*time.Minute) {
		t.Fatal("a loss older than the idle_timeout still defers revocation")
	}
	if !e.b.cache.usage.Trustworthy(c, lostAt.Add(time.Hour), time.Hour) {
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
	e.b.cache.usage.Trustworthy(c, now, time.Hour)
	if n := strings.Count(logs.String(), "revocation deferred"); n != 2 {
		t.Fatalf("%d deferral warnings after a flush, want 2", n)
	}
}

// Verifies racing flushes: nothing is counted twice or lost, and the
// buffer drains (run with -race).
func TestUsageConcurrentVerifyAndFlush(t *testing.T) {
	for _, tc := range []struct {
		name            string
		capacity, spill int
	}{
		{"roomy", usage.MaxEntries, usage.MaxSpill},
		// Two entries and four spill slots hold the last use of all six
		// keys, so spilling happens but no use is ever lost.
		{"spilling", 2, 4},
	} {
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
			if entries, spilled, queued := e.b.cache.usage.Buffered(); entries+spilled+queued != 0 {
				t.Fatalf("not drained: %d entries, %d spilled, %d queued", entries, spilled, queued)
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
