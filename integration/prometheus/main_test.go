// Package prometheus tests the plugin's metrics with the real Prometheus
// tools (Debian's prometheus package, installed by make deps): a
// prometheus server scrapes a mount through Vault's HTTP API with the
// apikeys-metrics policy's token, promtool lints the exposition, checks
// and unit-tests the alerting rules in bootstrap/prometheus, and parses
// every query of the Grafana dashboard in bootstrap/grafana.
package prometheus

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// The example policies are loaded, as make dev does: the scraper's token
// gets apikeys-metrics, which names the default mount "apikeys".
func TestMain(m *testing.M) {
	vaulttest.RunMainWith(m, vaulttest.Options{ExamplePolicies: true})
}
