package scanning

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// gitleaksBin is bin/gitleaks; the test fails (never skips) without it.
func gitleaksBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "gitleaks")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make scan-tools` (make test builds it before the integration tests)", bin)
	}
	return bin
}

// keycheckBin builds cmd/apikeys-keycheck from this tree, so the test runs
// the validator as it is now, not a stale bin/ copy.
func keycheckBin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "apikeys-keycheck")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/apikeys-keycheck")
	cmd.Dir = repoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building apikeys-keycheck: %v\n%s", err, b)
	}
	return out
}

// result is one run of a program. Its stdout may hold keys, so only its
// stderr (counts, never a key) may be shown in a failure.
type result struct {
	code           int
	stdout, stderr string
}

func runTool(t *testing.T, dir string, env []string, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return r
}
