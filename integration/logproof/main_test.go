// Package logproof tests the lifecycle log's signed checkpoints, proofs and
// archival in a real Vault on Raft storage, checked by the offline verifier
// (scripts/log-verify) as an auditor runs it: against the checkpoint key
// alone. Storage is altered through sys/raw, as whoever holds Vault's
// storage could.
package logproof

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

var (
	newMount = vaulttest.NewMount
	client   = vaulttest.Client
	write    = vaulttest.Write
	read     = vaulttest.Read
	num      = vaulttest.Num
)

// verifierBinary builds scripts/log-verify once per test binary.
func verifierBinary(t *testing.T) string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(os.TempDir(), "apikeys-log-verify-"+filepath.Base(t.TempDir()))
	cmd := exec.Command("go", "build", "-o", bin, "./scripts/log-verify")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building scripts/log-verify: %v\n%s", err, out)
	}
	t.Cleanup(func() { os.Remove(bin) })
	return bin
}
