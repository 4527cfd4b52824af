// Package governance tests approvals, lock-down, de-provisioning, leak
// intake, revocation lists, alerts, metrics, the public key policy and the
// bootstrap Vault policies inside a real Vault server (internal/vaulttest),
// with real userpass users mapped to identity entities.
package governance

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }

var (
	newMount     = vaulttest.NewMount
	client       = vaulttest.Client
	write        = vaulttest.Write
	read         = vaulttest.Read
	expectStatus = vaulttest.ExpectStatus
)
