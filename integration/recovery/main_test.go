// Package recovery tests, in a real Vault on Raft storage, that a change
// cut off by a crash (kill -9 of the plugin process or of Vault) is
// finished or undone as soon as the mount starts again, not minutes later.
package recovery

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }
