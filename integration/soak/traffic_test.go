package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

var httpc = &http.Client{Timeout: 30 * time.Second}

// reply is Vault's answer to one request.
type reply struct {
	status int
	data   map[string]interface{}
	errs   string
	body   string
}

// do sends one request to Vault (no retries: the soak counts every answer).
func do(addr, token, method, path string, query url.Values, body map[string]interface{}, header http.Header) (reply, error) {
	u := addr + "/v1/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("X-Vault-Token", token)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, body: string(raw)}
	var doc struct {
		Data   map[string]interface{} `json:"data"`
		Errors []string               `json:"errors"`
	}
	if json.Unmarshal(raw, &doc) == nil {
		r.data, r.errs = doc.Data, strings.Join(doc.Errors, "; ")
	}
	return r, nil
}

// sample is one request of the traffic, for the figures and the 5xx check.
type sample struct {
	at     time.Time
	action string
	status int // 0: no answer (connection refused while Vault or the plugin was down)
	detail string
}

// traffic is the mixed load on one mount: applications verifying keys
// (POST and GET, with client_ip) and exchanging them for tokens, issuers
// issuing and revoking, operators rotating by hand, partners fetching
// leased keys, a scanner reporting leaks, dashboards reading alerts and
// scraping metrics, and an agent re-reading keys the ticks rotate.
type traffic struct {
	addr, token, mount string

	mu      sync.Mutex
	keys    map[string]string // "client/name" -> current plaintext
	fast    []string          // keys the ticks rotate, re-read like Vault Agent does
	revoked map[string]string // revoked by the soak: "client/name" -> last plaintext
	issued  int
	seq     int
	samples []sample
}

func (tr *traffic) record(action string, r reply, err error) {
	s := sample{at: time.Now(), action: action, status: r.status}
	if err != nil {
		s.detail = err.Error()
	} else if r.status >= 500 {
		s.detail = r.errs
	}
	tr.mu.Lock()
	tr.samples = append(tr.samples, s)
	tr.mu.Unlock()
}

func (tr *traffic) req(action, method, path string, query url.Values, body map[string]interface{}, header http.Header) (reply, error) {
	r, err := do(tr.addr, tr.token, method, tr.mount+"/"+path, query, body, header)
	tr.record(action, r, err)
	return r, err
}

// pick returns a random live key.
func (tr *traffic) pick(rng *rand.Rand) (string, string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	names := make([]string, 0, len(tr.keys))
	for n := range tr.keys {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "", ""
	}
	// Map order is random; sorting is not needed for a load generator,
	// but the choice still comes from the seeded generator.
	n := names[rng.IntN(len(names))]
	return n, tr.keys[n]
}

func (tr *traffic) nextName(prefix string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seq++
	return fmt.Sprintf("%s-%d", prefix, tr.seq)
}

// step sends one request of a kind chosen at random, weighted toward the
// verifies that dominate real traffic.
func (tr *traffic) step(rng *rand.Rand) {
	name, key := tr.pick(rng)
	ip := fmt.Sprintf("10.1.%d.%d", rng.IntN(4), 1+rng.IntN(200))
	switch n := rng.IntN(100); {
	case n < 30:
		tr.req("verify POST", "POST", "verify", nil, map[string]interface{}{"key": key, "client_ip": ip, "scope": "orders:read", "audience": "orders-api"}, nil)
	case n < 50:
		tr.req("verify GET", "GET", "verify", url.Values{"client_ip": {ip}, "audience": {"orders-api"}}, nil, http.Header{"X-Api-Key": {key}})
	case n < 60:
		tr.req("token", "POST", "token", nil, map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:read"}, nil)
	case n < 66:
		k := tr.nextName("soak")
		r, err := tr.req("issue", "POST", "keys/svc/"+k, nil, map[string]interface{}{"role": "std"}, nil)
		if err == nil && r.status == 200 {
			if p, ok := r.data["key"].(string); ok {
				tr.mu.Lock()
				tr.keys["svc/"+k] = p
				tr.issued++
				tr.mu.Unlock()
			}
		}
	case n < 70:
		tr.req("leased creds", "GET", "creds/partner/leased", nil, nil, nil)
	case n < 74:
		if !strings.HasPrefix(name, "svc/std-") && !strings.HasPrefix(name, "svc/soak-") {
			return
		}
		r, err := tr.req("rotate", "POST", "keys/"+name+"/rotate", nil, map[string]interface{}{}, nil)
		if err == nil && r.status == 200 {
			if p, ok := r.data["key"].(string); ok {
				tr.mu.Lock()
				tr.keys[name] = p
				tr.mu.Unlock()
			}
		}
	case n < 77:
		if !strings.HasPrefix(name, "svc/soak-") {
			return
		}
		r, err := tr.req("revoke", "POST", "keys/"+name+"/revoke", nil, map[string]interface{}{"reason": "soak"}, nil)
		if err == nil && r.status < 300 {
			tr.forget(name, key)
		}
	case n < 79:
		if !strings.HasPrefix(name, "svc/soak-") {
			return
		}
		r, err := tr.req("leak report", "POST", "leaks", nil, map[string]interface{}{"key": key, "reporter": "soak-scanner", "source": "https://example.invalid/leak"}, nil)
		if err == nil && r.status < 300 {
			tr.forget(name, key)
		}
	case n < 86:
		tr.req("alerts read", "GET", "alerts", nil, nil, nil)
	case n < 90:
		tr.req("metrics json", "GET", "metrics", nil, nil, nil)
	case n < 94:
		tr.req("metrics prometheus", "GET", "metrics", url.Values{"format": {"prometheus"}}, nil, nil)
	default:
		tr.mu.Lock()
		f := tr.fast[rng.IntN(len(tr.fast))]
		tr.mu.Unlock()
		r, err := tr.req("agent read", "GET", "keys/"+f, nil, nil, nil)
		if err == nil && r.status == 200 {
			if p, ok := r.data["key"].(string); ok {
				tr.mu.Lock()
				tr.keys[f] = p
				tr.mu.Unlock()
			}
		}
	}
}

func (tr *traffic) forget(name, key string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.keys, name)
	tr.revoked[name] = key
}

// run sends requests from workers goroutines until stop is closed.
func (tr *traffic) run(seed uint64, workers int, stop <-chan struct{}, wg *sync.WaitGroup) {
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				tr.step(rng)
				// A few requests per second per worker: enough to keep
				// every path busy through the ticks on a shared machine.
				time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
			}
		}(w)
	}
}
