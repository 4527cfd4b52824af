// Package governance tests approvals, lock-down, de-provisioning, leak
// intake, revocation lists, alerts, metrics, the public key policy and the
// bootstrap Vault policies inside a real Vault server (internal/vaulttest),
// on Raft storage, with real userpass users mapped to identity entities.
package governance

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// The package runs on Raft storage, as production does: its 1 MiB entry
// limit is where a leak report with a huge field used to fail half-done.
func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

var (
	newMount     = vaulttest.NewMount
	client       = vaulttest.Client
	write        = vaulttest.Write
	read         = vaulttest.Read
	expectStatus = vaulttest.ExpectStatus
)
