package vaulttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/vault/api"
)

// DevOptions is the server `make dev` runs: the test recipe (plugin by
// SHA-256 and version, file audit device, mount tuning) on a fixed port with
// its files in dir and the example policies loaded. The README's own test
// (integration/readme) starts the same server on a free port.
func DevOptions(port int, dir string) Options {
	return Options{Port: port, Dir: dir, ExamplePolicies: true}
}

// PID is the Vault server's process id.
func (s *Server) PID() int { return s.proc.cmd.Process.Pid }

// Done is closed when the Vault server process has exited.
func (s *Server) Done() <-chan struct{} { return s.proc.done }

// writeExamplePolicies loads every bootstrap/policies/<name>.hcl as policy
// apikeys-<name>.
func writeExamplePolicies(ctx context.Context, c *api.Client, root string) error {
	files, err := filepath.Glob(filepath.Join(root, "bootstrap", "policies", "*.hcl"))
	if err != nil {
		return err
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		name := "apikeys-" + strings.TrimSuffix(filepath.Base(f), ".hcl")
		if err := c.Sys().PutPolicyWithContext(ctx, name, string(body)); err != nil {
			return fmt.Errorf("writing policy %s: %w", name, err)
		}
	}
	return nil
}
