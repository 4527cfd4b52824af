// Package gateway runs the shipped reverse-proxy configuration
// (bootstrap/gateways/nginx.conf) with the real nginx in front of a small
// upstream, against a real Vault (see internal/vaulttest): what a caller
// gets from nginx, and what the upstream sees, for each kind of key.
package gateway

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }
