package rotation

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
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
	Name     string `json:"name"`
	Revoked  bool   `json:"revoked"`
	Versions []struct {
		Version int    `json:"version"`
		State   string `json:"state"`
		HMAC    string `json:"hmac"`
	} `json:"versions"`
}

// TestPluginKillSettledAtOnce kills the plugin process (SIGKILL) during a
// burst of issuances and rotations. Vault starts a new process with the
// next request, and the mount's start settles whatever commit the kill
// cut off: right then (not two minutes later, when Vault's WAL rollback
// would get to it) no WAL entry is left, no index entry points at a
// version its key does not hold, every key and version has its log entry,
// and the log chain verifies.
func TestPluginKillSettledAtOnce(t *testing.T) {
	m := newMount(t)
	write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	write(t, m+"/roles/r", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod", "rotation_period": "1h", "grace_period": "10m",
	})
	for i := 0; i < 4; i++ {
		write(t, fmt.Sprintf("%s/keys/svc/base%d", m, i), map[string]interface{}{"role": "r"})
	}
	// Kill rounds until one cut a commit off (a WAL entry is left: sys/raw
	// is served by Vault itself, so it can be read while the plugin is
	// down); each round is a bounded burst of issuances and rotations.
	var killedAfter int64
	left := 0
	var recoveredAt time.Time
	for round := 0; round < 8 && left == 0; round++ {
		pids := pluginPIDs(t)
		if len(pids) == 0 {
			t.Fatal("plugin process not found")
		}
		var ops atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		c := client(t)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for n := 0; ops.Add(1) <= 200; n++ {
					select {
					case <-stop:
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
		time.Sleep(time.Second + time.Duration(round)*137*time.Millisecond)
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill plugin %d: %v", pid, err)
			}
		}
		killedAfter += ops.Load()
		close(stop)
		wg.Wait()
		left = len(vaulttest.RawList(t, m, "wal/"))
		t.Logf("round %d: %d operations, %d commits cut off", round+1, ops.Load(), left)

		// The first request starts a new plugin process.
		end := time.Now().Add(30 * time.Second)
		for {
			if _, err := client(t).Logical().List(m + "/keys/svc"); err == nil {
				break
			}
			if time.Now().After(end) {
				t.Fatal("plugin did not come back after being killed")
			}
			time.Sleep(200 * time.Millisecond)
		}
		recoveredAt = time.Now()
	}
	if left == 0 {
		t.Fatal("no kill cut a commit off in 8 rounds: the test proved nothing")
	}

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
		if rawJSON(t, m, "index/"+h, &ie) && ie.Client == "svc" && !held[h] {
			t.Errorf("index entry of %s/%s points at a version its key does not hold", ie.Client, ie.Name)
		}
	}
	logged := map[string]bool{}
	for _, typ := range []string{"key.issued", "key.rotated"} {
		for _, e := range logEntries(t, m, typ) {
			logged[fmt.Sprintf("%s %v %v", typ, e["key"], e["version"])] = true
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
	recovered := 0
	for _, typ := range []string{"key.issued", "key.rotated"} {
		for _, e := range logEntries(t, m, typ) {
			if d, _ := e["details"].(map[string]interface{}); d["recovered"] == "true" {
				recovered++
			}
		}
	}
	t.Logf("%d operations, %d keys, %d commits cut off, %d log entries recovered; checked %v after the restart",
		killedAfter, len(keys), left, recovered, time.Since(recoveredAt).Round(time.Millisecond))
}
