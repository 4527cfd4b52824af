// Package scanning runs the real gitleaks (bin/gitleaks, built by `make
// scan-tools` from the version pinned in bootstrap/gitleaks) with the rules
// shipped in bootstrap/scanning over a git repository holding keys a real
// Vault issued, then apikeys-keycheck over its report, then reports what
// is left to the mount's leaks endpoint.
package scanning

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }
