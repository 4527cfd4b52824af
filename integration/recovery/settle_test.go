package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var (
	client = vaulttest.Client
	write  = vaulttest.Write
)

// rawJSON reads a raw storage entry of mount m into out; false if absent.
func rawJSON(t *testing.T, m, key string, out interface{}) bool {
	t.Helper()
	s, err := client(t).Logical().Read(vaulttest.RawPath(t, m, key))
	if err != nil {
		t.Fatalf("raw read of %s: %v", key, err)
	}
	if s == nil {
		return false
	}
	if err := json.Unmarshal([]byte(s.Data["value"].(string)), out); err != nil {
		t.Fatalf("raw %s: %v", key, err)
	}
	return true
}

type rawKey struct {
	Versions []struct {
		Version int    `json:"version"`
		HMAC    string `json:"hmac"`
	} `json:"versions"`
}

// logEntries returns the mount's lifecycle log entries of one type, page
// by page.
func logEntries(t *testing.T, m, typ string) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	after := "0"
	for {
		s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"limit": {"1000"}, "after": {after}})
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := s.Data["entries"].([]interface{})
		for _, raw := range entries {
			e := raw.(map[string]interface{})
			if e["type"] == typ {
				out = append(out, e)
			}
		}
		next := fmt.Sprint(s.Data["next_after"])
		if len(entries) == 0 || s.Data["next_after"] == nil || next == after {
			return out
		}
		after = next
	}
}

// settledInLog counts the plugin's log lines (forwarded to Vault's log)
// for commits it settled at a mount start.
func settledInLog(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(vaulttest.Shared.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "settled a key change left interrupted by an earlier process")
}

// burst issues and rotates keys of mount m from several workers until
// stopped or 120 operations. It returns a function that stops it and
// returns how many operations ran, and one that tells how many have
// started so far.
func burst(t *testing.T, m string, round int) (stop func() int64, started func() int64) {
	var ops atomic.Int64
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	c := client(t)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ops.Add(1) <= 120; n++ {
				select {
				case <-stopping:
					return
				default:
				}
				if n%2 == 0 {
					_, _ = c.Logical().Write(fmt.Sprintf("%s/keys/svc/r%d-w%d-%d", m, round, w, n), map[string]interface{}{"role": "r"})
				} else {
					_, _ = c.Logical().Write(fmt.Sprintf("%s/keys/svc/base%d/rotate", m, (w+n)%4), nil)
				}
			}
		}(w)
	}
	stop = func() int64 {
		close(stopping)
		wg.Wait()
		return min(ops.Load(), 120)
	}
	return stop, func() int64 { return ops.Load() }
}

// TestCrashSettledAtOnce kills the plugin process, then Vault itself
// (SIGKILL), during a burst of issuances and rotations. The next request
// to the mount starts the plugin again, and the mount's start settles
// whatever commit the kill cut off: right then (not two minutes later, when
// Vault's WAL rollback would get to it) no WAL entry is left, no index
// entry points at a version its key does not hold, every key and version
// has its log entry, and the log chain verifies.
func TestCrashSettledAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := vaulttest.Shared
	for _, kill := range []string{"plugin", "vault"} {
		t.Run(kill, func(t *testing.T) {
			m := vaulttest.NewMount(t)
			write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
			write(t, m+"/roles/r", map[string]interface{}{
				"scopes": "orders:read", "environment": "prod", "rotation_period": "1h", "grace_period": "10m",
			})
			for i := 0; i < 4; i++ {
				write(t, fmt.Sprintf("%s/keys/svc/base%d", m, i), map[string]interface{}{"role": "r"})
			}
			// Kill rounds until one cut a commit off: the restarted
			// plugin says in Vault's log that it settled one.
			cut, ops := 0, int64(0)
			for round := 0; round < 8 && cut == 0; round++ {
				before := settledInLog(t)
				// Kill while the workers are surely in the middle of
				// the burst, at a different point each round: a fixed
				// delay can outlast the whole burst once commits are fast.
				stop, started := burst(t, m, round)
				for atLeast := int64(16 + 11*round); started() < atLeast; {
					time.Sleep(2 * time.Millisecond)
				}
				switch kill {
				case "plugin":
					if _, err := s.KillPlugin(); err != nil {
						t.Fatal(err)
					}
					ops += stop()
				case "vault":
					// The workers' requests fail while Vault is down.
					done := make(chan int64)
					go func() { done <- stop() }()
					if err := s.Restart(ctx, true); err != nil {
						t.Fatalf("restart after the kill: %v", err)
					}
					ops += <-done
				}
				// The first request to the mount starts the plugin (if
				// Vault's rollback manager has not already).
				end := time.Now().Add(60 * time.Second)
				for {
					if _, err := client(t).Logical().List(m + "/keys/svc"); err == nil {
						break
					}
					if time.Now().After(end) {
						t.Fatal("the mount did not answer after the kill")
					}
					time.Sleep(200 * time.Millisecond)
				}
				// The log line is written before the request is answered,
				// but reaches Vault's log file a moment later.
				for wait := time.Now().Add(2 * time.Second); cut == 0 && time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
					cut = settledInLog(t) - before
				}
				t.Logf("round %d: %d commits cut off and settled", round+1, cut)
			}
			if cut == 0 {
				t.Fatal("no kill cut a commit off in 8 rounds: the test proved nothing")
			}
			checkSettled(t, m)
			t.Logf("%d operations; %d commits cut off by the last kill, settled at the mount's start", ops, cut)
		})
	}
}

// checkSettled asserts, right after the mount started again, that nothing
// an interrupted commit leaves behind is still there.
func checkSettled(t *testing.T, m string) {
	t.Helper()
	if w := vaulttest.RawList(t, m, "wal/"); len(w) != 0 {
		t.Fatalf("%d WAL entries left right after the restart: %v", len(w), w)
	}
	keys := map[string]rawKey{}
	for _, name := range vaulttest.RawList(t, m, "keys/svc/") {
		var k rawKey
		if rawJSON(t, m, "keys/svc/"+name, &k) {
			keys[name] = k
		}
	}
	held := map[string]bool{}
	for _, k := range keys {
		for _, v := range k.Versions {
			held[v.HMAC] = true
		}
	}
	for _, h := range vaulttest.RawList(t, m, "index/") {
		var ie struct {
			Client string `json:"client"`
			Name   string `json:"name"`
		}
		if rawJSON(t, m, "index/"+h, &ie) && !held[h] {
			t.Errorf("index entry of %s/%s points at a version its key does not hold", ie.Client, ie.Name)
		}
	}
	logged := map[string]bool{}
	recovered := 0
	for _, typ := range []string{"key.issued", "key.rotated"} {
		for _, e := range logEntries(t, m, typ) {
			logged[fmt.Sprintf("%s %v %v", typ, e["key"], e["version"])] = true
			if d, _ := e["details"].(map[string]interface{}); d["recovered"] == "true" {
				recovered++
				if d["occurred_at"] == nil {
					t.Errorf("recovered entry without occurred_at: %v", e)
				}
			}
		}
	}
	for name, k := range keys {
		if !logged[fmt.Sprintf("key.issued %s 1", name)] {
			t.Errorf("key %s has no key.issued entry", name)
		}
		for _, v := range k.Versions {
			if v.Version > 1 && !logged[fmt.Sprintf("key.rotated %s %d", name, v.Version)] {
				t.Errorf("version %d of key %s has no key.rotated entry", v.Version, name)
			}
		}
	}
	if s, err := client(t).Logical().Read(m + "/log/verify"); err != nil || s.Data["valid"] != true {
		t.Fatalf("log chain does not verify: %v %v", s, err)
	}
	t.Logf("%d keys checked, %d log entries recovered", len(keys), recovered)
}
