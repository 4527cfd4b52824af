package prometheus

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// program returns the path of a Prometheus program, failing (not
// skipping) the test if it is missing: make deps installs it.
func program(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run `make deps` (it installs the Debian packages of bootstrap/ci/debian-packages.txt): %v", name, err)
	}
	return path
}

// promtool runs promtool with args (and stdin, if any) in dir and fails
// the test unless it succeeds.
func promtool(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(program(t, "promtool"), args...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// bootstrapDir is bootstrap/<name> of the repository.
func bootstrapDir(t *testing.T, name string) string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bootstrap", name)
}
