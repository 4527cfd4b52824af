// Package upgrade checks that a mount written by the previous release keeps
// working when it is switched to the current build, as operators upgrade:
// both builds are registered in the plugin catalog of one real Vault (on
// Raft storage, as production runs), the mount is pinned to the previous
// version, used, then tuned to the current version and reloaded. The
// previous release is named in previous_release and built from the
// repository's own history, so every release is checked against the one
// before it.
package upgrade

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }
