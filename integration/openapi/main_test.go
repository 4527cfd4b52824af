// Package openapi checks the mount's OpenAPI document, as a real Vault
// serves it (sys/internal/specs/openapi), with an independent validator:
// the Redocly CLI pinned in bootstrap/ci/openapi (see internal/vaulttest).
package openapi

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }
