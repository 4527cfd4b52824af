package governance

import (
	"os"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func readFile(t *testing.T) (string, error) {
	t.Helper()
	b, err := os.ReadFile(vaulttest.Shared.AuditPath)
	return string(b), err
}
