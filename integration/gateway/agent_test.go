package gateway

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// The Envoy and Traefik configurations reach Vault through a Vault Agent
// whose API proxy adds the token, and nginx reads a token file the Agent
// renders from nginx-vault-token.ctmpl. This runs the real Agent for both:
// the template renders what nginx includes, and verify/authorize's status
// and headers come through the proxy unchanged, whatever token the caller
// sends.
func TestVaultAgentForGateways(t *testing.T) {
	m := vaulttest.NewMount(t)
	vaulttest.Write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	vaulttest.Write(t, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "audiences": "orders-api", "rate_limit": 1, "rate_limit_window": "1h"})
	key := vaulttest.Write(t, m+"/keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)

	// The Agent's token: the gateway policy, and the default policy for
	// the template's auth/token/lookup-self.
	policy := gatewayPolicy(t, m)
	s, err := vaulttest.Client(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy, "default"}})
	if err != nil {
		t.Fatal(err)
	}
	token := s.Auth.ClientToken

	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	rendered := filepath.Join(dir, "apikeys-vault-token.conf")
	config := fmt.Sprintf(`
pid_file = %q
vault {
  address = %q
  # A gateway's Agent must not retry: Vault's client retries a 429 after
  # its Retry-After, holding the caller for up to an hour.
  retry { num_retries = -1 }
}
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
api_proxy { use_auto_auth_token = "force" }
listener "tcp" {
  address     = %q
  tls_disable = true
}
template {
  source      = %q
  destination = %q
  perms       = "0600"
}
`, filepath.Join(dir, "agent.pid"), vaulttest.Shared.Addr, filepath.Join(dir, "token"), listen,
		filepath.Join(root, "bootstrap", "gateways", "nginx-vault-token.ctmpl"), rendered)
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "bin", "vault"), "agent", "-config="+filepath.Join(dir, "agent.hcl"))
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+vaulttest.Shared.Addr, "VAULT_TOKEN=")
	runUntilCleanup(t, "vault agent", cmd, syscall.SIGTERM)

	// The template: one "set" line with the Agent's token, as nginx.conf
	// includes it.
	var got []byte
	vaulttest.WaitFor(t, 30*time.Second, "the Agent renders the nginx token include", func() bool {
		got, err = os.ReadFile(rendered)
		return err == nil && len(got) > 0
	})
	if want := fmt.Sprintf("set $apikeys_vault_token %q;", token); strings.TrimSpace(string(got)) != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	vaulttest.WaitFor(t, 30*time.Second, "the Agent listens", func() bool {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// The API proxy: the gateway sends no token (or a caller's, ignored).
	q := url.Values{"audience": {"orders-api"}}
	path := "/v1/" + m + "/verify/authorize?" + q.Encode()
	a := get(t, listen, path, map[string]string{"X-Api-Key": key, "X-Vault-Token": "hvs.a-callers-token"})
	if a.status != 200 || a.header.Get("X-Apikeys-Client") != "svc" || !strings.HasPrefix(a.header.Get("X-Apikeys-Key-Id"), "kid_") {
		t.Fatalf("through the Agent: %d %v %q", a.status, a.header, a.body)
	}
	a = get(t, listen, path, map[string]string{"X-Api-Key": key})
	if n, err := strconv.Atoi(a.header.Get("Retry-After")); a.status != 429 || err != nil || n < 1 || a.header.Get("X-Apikeys-Code") != "rate_limited" {
		t.Fatalf("rate limited through the Agent: %d %v %q", a.status, a.header, a.body)
	}
	if a := get(t, listen, path, nil); a.status != 401 || a.header.Get("X-Apikeys-Code") != "missing_key" {
		t.Fatalf("no key through the Agent: %d %v %q", a.status, a.header, a.body)
	}
}
