package rotation

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// Vault 1.13 runs a mount's periodic function about once a minute, so a key
// with rotation_period=1m rotates between one and two minutes after issue.
const rotationDeadline = 210 * time.Second

// setupRotatingKey creates a client, a role rotating every minute with a
// 30 s grace, and issues a key; it returns the plaintext.
func setupRotatingKey(t *testing.T, m string) string {
	t.Helper()
	write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	write(t, m+"/roles/fast", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod",
		"rotation_period": "1m", "grace_period": "30s", "max_grace_period": "30s",
	})
	s := write(t, m+"/keys/svc/main", map[string]interface{}{"role": "fast"})
	// Vault Agent contract: integer ttl (seconds to the next rotation)
	// and rotation_period on the managed key.
	if ttl := num(t, s.Data["ttl"]); ttl < 1 || ttl > 60 {
		t.Fatalf("ttl on issue = %d, want 1..60", ttl)
	}
	if p := num(t, s.Data["rotation_period"]); p != 60 {
		t.Fatalf("rotation_period = %d, want 60", p)
	}
	return s.Data["key"].(string)
}

// waitForVersion polls the key until its current version is at least want.
func waitForVersion(t *testing.T, path string, want int64, deadline time.Duration) *api.Secret {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		s, err := client(t).Logical().Read(path)
		if err == nil && s != nil && num(t, s.Data["version"]) >= want {
			return s
		}
		if time.Now().After(end) {
			t.Fatalf("key %s did not reach version %d within %v (last: %v, err %v)", path, want, deadline, s, err)
		}
		time.Sleep(time.Second)
	}
}

// verify calls the verify endpoint and returns (active, code).
func verify(t *testing.T, m, key string) (bool, string) {
	t.Helper()
	s := write(t, m+"/verify", map[string]interface{}{"key": key})
	active, _ := s.Data["active"].(bool)
	code, _ := s.Data["code"].(string)
	return active, code
}

func versionState(t *testing.T, s *api.Secret, version int64) string {
	t.Helper()
	for _, raw := range s.Data["versions"].([]interface{}) {
		v := raw.(map[string]interface{})
		if num(t, v["version"]) == version {
			return fmt.Sprint(v["state"])
		}
	}
	return ""
}

// logEntries returns the mount's lifecycle log entries of one type.
func logEntries(t *testing.T, m, typ string) []map[string]interface{} {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"after": {"0"}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]interface{}
	for _, raw := range s.Data["entries"].([]interface{}) {
		e := raw.(map[string]interface{})
		if e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

func actorType(e map[string]interface{}) string {
	a, _ := e["actor"].(map[string]interface{})
	return fmt.Sprint(a["type"])
}

// TestScheduledRotationInVault: a key rotates by itself; during grace both
// versions verify; after grace the old one does not; the log records the
// rotation as background work (actor system).
func TestScheduledRotationInVault(t *testing.T) {
	t.Parallel() // runs alongside the agent test, after the crash test
	m := newMount(t)
	old := setupRotatingKey(t, m)
	issued := time.Now()
	if active, code := verify(t, m, old); !active {
		t.Fatalf("fresh key does not verify: %s", code)
	}

	s := waitForVersion(t, m+"/keys/svc/main", 2, rotationDeadline)
	t.Logf("rotated by itself %v after issue", time.Since(issued).Round(time.Second))
	cur := s.Data["key"].(string)
	if cur == old {
		t.Fatal("rotation kept the same secret")
	}
	if ttl := num(t, s.Data["ttl"]); ttl < 1 || ttl > 60 {
		t.Fatalf("ttl after rotation = %d, want 1..60", ttl)
	}
	// Grace: both versions are accepted (the new one first, so adoption
	// does not hold the old one back later).
	if active, code := verify(t, m, cur); !active {
		t.Fatalf("new version does not verify: %s", code)
	}
	if num(t, s.Data["version"]) == 2 && versionState(t, s, 1) == "previous" {
		if active, code := verify(t, m, old); !active {
			t.Fatalf("old version rejected during its grace period: %s", code)
		}
	} else {
		t.Fatalf("unexpected state right after rotation: %v", s.Data["versions"])
	}

	// After the grace period the old version is refused, and the next
	// tick retires it.
	end := time.Now().Add(150 * time.Second)
	for {
		active, code := verify(t, m, old)
		s = read(t, m+"/keys/svc/main")
		if !active && code == "expired" && versionState(t, s, 1) == "retired" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("old version still accepted or not retired: active=%v code=%s versions=%v", active, code, s.Data["versions"])
		}
		time.Sleep(2 * time.Second)
	}

	rotated := logEntries(t, m, "key.rotated")
	if len(rotated) == 0 {
		t.Fatal("no key.rotated entry in the lifecycle log")
	}
	for _, e := range rotated {
		if actorType(e) != "system" || e["client"] != "svc" || e["key"] != "main" {
			t.Fatalf("key.rotated entry not attributed to system: %v", e)
		}
	}
	if v, ok := s.Data["version"]; ok && num(t, v) >= 3 {
		t.Logf("the key rotated again meanwhile (version %v), as its 1m period says", v)
	}
	retired := logEntries(t, m, "key.retired")
	for _, e := range retired {
		if actorType(e) != "system" {
			t.Fatalf("key.retired entry not attributed to system: %v", e)
		}
	}
	if s, err := client(t).Logical().Read(m + "/log/verify"); err != nil || s.Data["valid"] != true {
		t.Fatalf("log chain does not verify: %v %v", s, err)
	}
}

// pluginPIDs finds the running plugin processes of this test's Vault (by
// the executable path under its own plugin directory).
func pluginPIDs(t *testing.T) []int {
	t.Helper()
	pids, err := vaulttest.ProcessesOf(filepath.Join(vaulttest.Shared.PluginDir, vaulttest.PluginBinary))
	if err != nil {
		t.Fatalf("listing plugin processes: %v", err)
	}
	return pids
}

// TestRotationSurvivesPluginCrash kills the plugin process (SIGKILL) after
// a key was issued: Vault restarts the plugin, the new process rebuilds the
// schedule from storage, and the key still rotates by itself with a
// consistent state.
func TestRotationSurvivesPluginCrash(t *testing.T) {
	m := newMount(t)
	setupRotatingKey(t, m)
	pids := pluginPIDs(t)
	if len(pids) == 0 {
		t.Fatal("plugin process not found")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill plugin %d: %v", pid, err)
		}
	}
	// The next request may see the dead process once; Vault then starts
	// a new one.
	end := time.Now().Add(30 * time.Second)
	for {
		if _, err := client(t).Logical().Read(m + "/keys/svc/main"); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatal("plugin did not come back after being killed")
		}
		time.Sleep(time.Second)
	}
	if after := pluginPIDs(t); len(after) == 0 || after[0] == pids[0] {
		t.Fatalf("no new plugin process (before %v, after %v)", pids, after)
	}

	s := waitForVersion(t, m+"/keys/svc/main", 2, rotationDeadline)
	if versionState(t, s, 1) != "previous" && versionState(t, s, 1) != "retired" {
		t.Fatalf("old version in state %q after rotation", versionState(t, s, 1))
	}
	if active, code := verify(t, m, s.Data["key"].(string)); !active {
		t.Fatalf("rotated key does not verify: %s", code)
	}
	if e := logEntries(t, m, "key.rotated"); len(e) == 0 || actorType(e[0]) != "system" {
		t.Fatalf("key.rotated log entries: %v", e)
	}
}
