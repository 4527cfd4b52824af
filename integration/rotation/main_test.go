// Package rotation tests the scheduled rotation engine inside a real Vault
// server (see internal/vaulttest): rotation by itself from Vault's periodic
// function, the grace overlap, retirement, the lifecycle log, survival of a
// plugin crash, and the Vault Agent contract.
package rotation

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }

var (
	newMount = vaulttest.NewMount
	client   = vaulttest.Client
	write    = vaulttest.Write
	read     = vaulttest.Read
	num      = vaulttest.Num
)
