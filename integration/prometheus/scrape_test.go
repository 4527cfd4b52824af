package prometheus

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// traffic is what withTraffic does to a mount, as the metrics should
// count it.
const (
	activeKeys      = 4 // billing: 3, shop: 1
	billingVerifies = 2 // listed in metrics_clients: its own series
	shopVerifies    = 1 // not listed: counted as _other
)

// withTraffic gives mount two clients with keys, names billing in
// metrics_clients, and verifies keys of both and one malformed key.
func withTraffic(t *testing.T, mount string) {
	t.Helper()
	vaulttest.SetupClientRole(t, mount, "billing", "internal", "r-billing", nil)
	vaulttest.SetupClientRole(t, mount, "shop", "internal", "r-shop", nil)
	vaulttest.Write(t, mount+"/config", map[string]interface{}{"metrics_clients": "billing"})
	var billingKey, shopKey string
	for i, name := range []string{"a", "b", "c"} {
		k := vaulttest.Write(t, mount+"/keys/billing/"+name, map[string]interface{}{"role": "r-billing"}).Data["key"].(string)
		if i == 0 {
			billingKey = k
		}
	}
	shopKey = vaulttest.Write(t, mount+"/keys/shop/main", map[string]interface{}{"role": "r-shop"}).Data["key"].(string)
	verify := func(key string) {
		s := vaulttest.Write(t, mount+"/verify", map[string]interface{}{"key": key})
		if s.Data["active"] != true {
			t.Fatalf("verify answered %v, want active", s.Data)
		}
	}
	for i := 0; i < billingVerifies; i++ {
		verify(billingKey)
	}
	for i := 0; i < shopVerifies; i++ {
		verify(shopKey)
	}
	// A malformed key is answered, not refused: counted under _none.
	if s := vaulttest.Write(t, mount+"/verify", map[string]interface{}{"key": "ak_prod_nope"}); s.Data["active"] != false {
		t.Fatalf("malformed key answered %v", s.Data)
	}
}

func newMountWithTraffic(t *testing.T) string {
	t.Helper()
	m := vaulttest.NewMount(t)
	withTraffic(t, m)
	return m
}

func rootToken(*testing.T) string { return vaulttest.Shared.Token }

// scrape reads mount's metrics as Prometheus does: GET with
// format=prometheus and the token as a bearer token.
func scrape(t *testing.T, mount, token string) string {
	t.Helper()
	req := vaulttest.NewRequest(t, http.MethodGet, vaulttest.Shared.Addr+"/v1/"+mount+"/metrics?format=prometheus", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, body := vaulttest.Do(t, req)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("scrape: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return string(body)
}

// scraperToken is a token of the apikeys-metrics policy alone, as the
// README tells operators to make for Prometheus.
func scraperToken(t *testing.T) string {
	t.Helper()
	s, err := vaulttest.Client(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"apikeys-metrics"}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// A real prometheus server scrapes the default mount through Vault's HTTP
// API with the shipped scrape config and a token of the apikeys-metrics
// policy read from a file, loads the shipped alerting rules, and answers
// queries with the mount's counts; promtool check metrics passes on the
// exposition; every dashboard query runs on the scraped data.
func TestPrometheusScrapesMount(t *testing.T) {
	mount := vaulttest.Shared.Mount
	withTraffic(t, mount)
	token := scraperToken(t)

	// The exposition passes Prometheus's linter.
	promtool(t, t.TempDir(), scrape(t, mount, token), "check", "metrics")

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-metrics-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(bootstrapDir(t, "prometheus"), "apikeys-rules.yml")
	p := startPrometheus(t, scrapeConfig(t, vaulttest.Shared.Addr, mount, tokenFile, rules))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for q, want := range map[string]float64{
		`up{job="apikeys"}`:            1,
		`apikeys_keys{state="active"}`: activeKeys,
		`apikeys_verify_by_client_total{client="billing",outcome="active"}`:  billingVerifies,
		`apikeys_verify_by_client_total{client="_other",outcome="active"}`:   shopVerifies,
		`apikeys_verify_by_client_total{client="_none",outcome="malformed"}`: 1,
		`sum(apikeys_verify_total{outcome="active"})`:                        billingVerifies + shopVerifies,
		`apikeys_rotation_coverage_ratio`:                                    1,
		`apikeys_key_age_seconds_count`:                                      activeKeys,
	} {
		waitForValue(ctx, t, p, q, want)
	}
	// shop is not listed: no series of its own.
	if got, err := p.query(ctx, `apikeys_verify_by_client_total{client="shop"}`); err != nil || len(got) != 0 {
		t.Fatalf("a client outside metrics_clients has its own series: %v %v", got, err)
	}

	for {
		ok, err := p.rulesHealthy(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the alerting rules were not all evaluated within 60s")
		}
		time.Sleep(200 * time.Millisecond) // polling Prometheus, not timing
	}

	for _, q := range dashboardQueries(t) {
		if _, err := p.query(ctx, q.expr); err != nil {
			t.Errorf("dashboard panel %q: %v", q.panel, err)
		}
	}
}

// waitForValue polls an instant query until it returns one series with
// value want, or fails at ctx's deadline with the last answer.
func waitForValue(ctx context.Context, t *testing.T, p *promServer, q string, want float64) {
	t.Helper()
	var last []sample
	var lastErr error
	for {
		last, lastErr = p.query(ctx, q)
		if lastErr == nil && len(last) == 1 && last[0].Value == want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: want one series = %v, last answer %v (err %v)", q, want, last, lastErr)
		}
		time.Sleep(200 * time.Millisecond) // polling Prometheus, not timing
	}
}
