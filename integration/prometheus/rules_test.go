package prometheus

import (
	"strings"
	"testing"
)

// The alerting rules load in promtool and pass their unit tests
// (apikeys-rules.test.yml: each alert fires when it should and only then).
func TestAlertingRules(t *testing.T) {
	dir := bootstrapDir(t, "prometheus")
	if out := promtool(t, dir, "", "check", "rules", "apikeys-rules.yml"); !strings.Contains(out, "SUCCESS: 5 rules found") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	if out := promtool(t, dir, "", "test", "rules", "apikeys-rules.test.yml"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}
