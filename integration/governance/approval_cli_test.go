package governance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// vaultCLI runs the vault command line as u against the test server and
// returns its trimmed standard output.
func vaultCLI(t *testing.T, u *user, args ...string) string {
	t.Helper()
	bin := os.Getenv("VAULT_BIN")
	if bin == "" {
		root, err := vaulttest.FindRepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", "vault")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+vaulttest.Shared.Addr, "VAULT_TOKEN="+u.c.Token(), "VAULT_FORMAT=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vault %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// The approval id has a name of its own: `vault write -field=approval_id`
// gives the plugin's id (-field=request_id gave Vault's own request id), and
// approval_id=<id> issues with it, as the README shows.
func TestApprovalIDFromTheCLI(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "gated", map[string]interface{}{"requires_approval": true})
	pol := mountPolicy(t, m)
	alice := newUser(t, "alice", []string{pol}, nil)
	bob := newUser(t, "bob", []string{pol}, nil)

	id := vaultCLI(t, alice, "write", "-field=approval_id", m+"/requests", "client=billing", "role=gated", "name=main", "justification=orders migration")
	if !strings.HasPrefix(id, "req_") {
		t.Fatalf("-field=approval_id gave %q", id)
	}
	if s := read(t, m+"/requests/"+id); s.Data["approval_id"] != id || s.Data["state"] != "pending" {
		t.Fatalf("request %s: %v", id, s.Data)
	}
	vaultCLI(t, bob, "write", "-f", m+"/requests/"+id+"/approve")
	key := vaultCLI(t, alice, "write", "-field=key", m+"/keys/billing/main", "role=gated", "approval_id="+id)
	if active, code := verify(t, m, key, nil); !active {
		t.Fatalf("the key issued with approval_id does not verify: %s", code)
	}
	k := read(t, m+"/keys/billing/main")
	if k.Data["approval_id"] != id {
		t.Fatalf("key read: approval_id %v, want %s", k.Data["approval_id"], id)
	}
	inv := read(t, m+"/inventory")
	if items := inv.Data["keys"].([]interface{}); len(items) != 1 || items[0].(map[string]interface{})["approval_id"] != id {
		t.Fatalf("inventory: %v", inv.Data)
	}
}
