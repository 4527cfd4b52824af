package rotation

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// TestAgentRendersRotatedKey runs `vault agent` (the same bin/vault) with
// the documented template (bootstrap/agent/apikey.ctmpl) against the test
// server, and shows the rendered file switches to the new key after the
// scheduled rotation, driven only by the key's ttl.
func TestAgentRendersRotatedKey(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	write(t, m+"/clients/checkout", map[string]interface{}{"owner": "team-pay", "type": "internal"})
	write(t, m+"/roles/fast", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod", "rotation_period": "1m", "grace_period": "30s",
	})
	first := write(t, m+"/keys/checkout/main", map[string]interface{}{"role": "fast"}).Data["key"].(string)

	rendered := startAgent(t, m)
	waitFor := func(what string, deadline time.Duration, ok func(string) bool) string {
		t.Helper()
		end := time.Now().Add(deadline)
		for {
			if s := rendered(); ok(s) {
				return s
			}
			if time.Now().After(end) {
				t.Fatalf("agent did not render %s within %v; file:\n%s", what, deadline, rendered())
			}
			time.Sleep(time.Second)
		}
	}
	s := waitFor("the first key", 30*time.Second, func(s string) bool { return strings.Contains(s, "ORDERS_API_KEY=") })
	if !strings.Contains(s, "ORDERS_API_KEY="+first+"\n") || !strings.Contains(s, "ORDERS_API_KEY_VERSION=1\n") {
		t.Fatalf("first render:\n%s", s)
	}

	s = waitFor("the rotated key", rotationDeadline+30*time.Second, func(s string) bool {
		return strings.Contains(s, "ORDERS_API_KEY=") && !strings.Contains(s, first)
	})
	cur := read(t, m+"/keys/checkout/main")
	if !strings.Contains(s, "ORDERS_API_KEY_VERSION=") || strings.Contains(s, "ORDERS_API_KEY_VERSION=1\n") {
		t.Fatalf("render after rotation:\n%s", s)
	}
	// The rendered key is one the mount issued for this key (the current
	// one, or the one before if a further rotation just happened).
	if active, code := verify(t, m, strings.TrimSpace(strings.SplitN(strings.SplitN(s, "ORDERS_API_KEY=", 2)[1], "\n", 2)[0])); !active {
		t.Fatalf("rendered key does not verify (%s); current version %v", code, cur.Data["version"])
	}
}

// startAgent runs `vault agent` (the same bin/vault) with the documented
// template (bootstrap/agent/apikey.ctmpl) pointed at mount m, and returns
// a function that reads the rendered file. Agent is stopped when the test
// ends.
func startAgent(t *testing.T, m string) func() string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tmpl, err := os.ReadFile(filepath.Join(root, "bootstrap", "agent", "apikey.ctmpl"))
	if err != nil {
		t.Fatal(err)
	}
	// The documented template, pointed at this test's mount.
	src := strings.ReplaceAll(string(tmpl), `"apikeys/keys/checkout/main"`, fmt.Sprintf("%q", m+"/keys/checkout/main"))
	if src == string(tmpl) {
		t.Fatal("template does not read apikeys/keys/checkout/main")
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "apikey.ctmpl"), []byte(src), 0o600))
	must(os.WriteFile(filepath.Join(dir, "token"), []byte(vaulttest.Shared.Token), 0o600))
	out := filepath.Join(dir, "apikey.env")
	cfg := fmt.Sprintf(`
vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
template {
  source      = %q
  destination = %q
  perms       = "0600"
}
`, vaulttest.Shared.Addr, filepath.Join(dir, "token"), filepath.Join(dir, "apikey.ctmpl"), out)
	must(os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(cfg), 0o600))

	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	must(err)
	agent := exec.Command(filepath.Join(root, "bin", "vault"), "agent", "-config="+filepath.Join(dir, "agent.hcl"), "-log-level=debug")
	// No VAULT_* from the caller's environment: Agent would prefer them
	// (even empty) over its configuration.
	agent.Env = []string{"HOME=" + dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") {
			agent.Env = append(agent.Env, kv)
		}
	}
	agent.Stdout, agent.Stderr = logf, logf
	must(agent.Start())
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "agent.log")); err == nil {
				t.Logf("agent log:\n%s", b)
			}
		}
	})

	return func() string {
		b, _ := os.ReadFile(out)
		return string(b)
	}
}
