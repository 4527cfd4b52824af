package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promServer is a real prometheus server started by a test on loopback.
type promServer struct {
	url string
	cmd *exec.Cmd
	log string
}

// scrapeConfig turns the shipped bootstrap/prometheus/prometheus.yml into
// one for this test: Vault's address (plain HTTP on loopback), the mount,
// the token file and a 1s scrape and rule interval. Every rewrite must
// match, so a change to the shipped file that the test no longer covers
// fails here.
func scrapeConfig(t *testing.T, vaultAddr, mount, tokenFile, rulesFile string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(bootstrapDir(t, "prometheus"), "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(vaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, r := range [][2]string{
		{"scrape_interval: 30s", "scrape_interval: 1s"},
		{"evaluation_interval: 30s", "evaluation_interval: 1s"},
		{"- apikeys-rules.yml", "- " + rulesFile},
		{"scheme: https", "scheme: " + u.Scheme},
		{"metrics_path: /v1/apikeys/metrics", "metrics_path: /v1/" + mount + "/metrics"},
		{"credentials_file: /etc/prometheus/vault-metrics-token", "credentials_file: " + tokenFile},
		{`targets: ["vault.example.com:8200"]`, `targets: ["` + u.Host + `"]`},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("bootstrap/prometheus/prometheus.yml: %q not found once", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	return cfg
}

// startPrometheus runs prometheus with config on a free loopback port and
// waits until it is ready; it is stopped when the test ends.
func startPrometheus(t *testing.T, config string) *promServer {
	t.Helper()
	bin := program(t, "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "", "check", "config", cfgPath)
	addr := freeLoopbackAddr(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &promServer{url: "http://" + addr, cmd: cmd, log: logPath}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited: %v\n%s", err, b)
		default:
		}
		if resp, err := http.Get(s.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus not ready within 30s")
		}
		time.Sleep(100 * time.Millisecond) // polling a starting server, not timing
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get decodes the JSON answer of Prometheus's HTTP API at path into v.
func (s *promServer) get(ctx context.Context, path string, v interface{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query runs an instant query through Prometheus's HTTP API. A query
// Prometheus refuses (a parse error, say) is an error.
func (s *promServer) query(ctx context.Context, q string) ([]sample, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     json.RawMessage
		} `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var raw []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]interface{}    `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &raw); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(raw))
		for _, r := range raw {
			v, err := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var raw [2]interface{}
		if err := json.Unmarshal(body.Data.Result, &raw); err != nil {
			return nil, err
		}
		v, err := strconv.ParseFloat(fmt.Sprint(raw[1]), 64)
		return []sample{{Value: v}}, err
	}
	return nil, fmt.Errorf("query %q: result type %q", q, body.Data.ResultType)
}

// rulesHealthy reports whether Prometheus loaded n alerting rules and has
// evaluated every one without error.
func (s *promServer) rulesHealthy(ctx context.Context, n int) (bool, error) {
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/rules?type=alert", &body); err != nil {
		return false, err
	}
	count := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			if r.Health == "err" {
				return false, fmt.Errorf("rule %s: %s", r.Name, r.LastError)
			}
			if r.Health != "ok" {
				return false, nil
			}
			count++
		}
	}
	return count == n, nil
}
