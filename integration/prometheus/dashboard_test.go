package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/promtext"
)

// panelQuery is one query of a dashboard panel, with the dashboard's
// variables replaced by values Prometheus accepts.
type panelQuery struct {
	panel string
	expr  string
}

// grafanaVars are what Grafana substitutes before a query reaches
// Prometheus.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__interval", "1m",
	"$__range", "1h",
	"$instance", ".*",
)

// dashboardQueries reads every panel query of bootstrap/grafana/apikeys.json
// (rows' panels included) and the template variables' queries.
func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(bootstrapDir(t, "grafana"), "apikeys.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query struct {
					Query string `json:"query"`
				} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("apikeys.json: %v", err)
	}
	var out []panelQuery
	var walk func([]json.RawMessage)
	walk = func(panels []json.RawMessage) {
		for _, r := range panels {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("apikeys.json panel: %v", err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Fatalf("panel %q has a target without a query", p.Title)
				}
				out = append(out, panelQuery{p.Title, grafanaVars.Replace(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	// label_values(metric, label) is Grafana's, not PromQL: its metric is
	// checked as a selector.
	labelValues := regexp.MustCompile(`^label_values\((\w+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		m := labelValues.FindStringSubmatch(v.Query.Query)
		if m == nil {
			t.Fatalf("template variable %s: query %q is not label_values(metric, label)", v.Name, v.Query.Query)
		}
		out = append(out, panelQuery{"variable " + v.Name, m[1]})
	}
	if len(out) < 10 {
		t.Fatalf("apikeys.json: only %d queries found", len(out))
	}
	return out
}

// metricNameRe finds the plugin's metric names in a query.
var metricNameRe = regexp.MustCompile(`\bapikeys_[a-z0-9_]+\b`)

// Every query of the dashboard parses with Prometheus's own parser
// (promtool check rules, on a rules file with one recording rule per
// query) and names only metrics a real mount exports: each apikeys_ name
// is a family of the mount's exposition (or a histogram's or summary's
// _bucket, _sum, _count), and a query naming none reads ALERTS, the
// series Prometheus keeps for the rules in bootstrap/prometheus.
func TestGrafanaDashboard(t *testing.T) {
	queries := dashboardQueries(t)

	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries {
		expr, _ := json.Marshal(q.expr) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-rules.yml"), []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := promtool(t, dir, "", "check", "rules", "dashboard-rules.yml"); !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", len(queries))) {
		t.Fatalf("promtool check rules on the dashboard's queries:\n%s", out)
	}

	exported := exportedFamilies(t)
	for _, q := range queries {
		names := metricNameRe.FindAllString(q.expr, -1)
		if len(names) == 0 && !strings.Contains(q.expr, "ALERTS{") {
			t.Errorf("panel %q: query %q names no metric of the plugin", q.panel, q.expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("panel %q: %s is not exported by the plugin (query %q)", q.panel, n, q.expr)
			}
		}
	}
}

// exportedFamilies are the metric names a scrape of a fresh mount
// returns, with the _bucket/_sum/_count series of histograms and
// summaries.
func exportedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	samples, err := promtext.Parse(scrape(t, newMountWithTraffic(t), rootToken(t)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for series := range samples {
		name, _, _ := strings.Cut(series, "{")
		out[name] = true
	}
	return out
}
