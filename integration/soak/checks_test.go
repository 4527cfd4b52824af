package soak

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// exit is a plugin process seen to end.
type exit struct {
	pid int
	at  time.Time
}

// pidTracker samples the server's plugin processes and notes every one
// that ends.
type pidTracker struct {
	mu    sync.Mutex
	exits []exit
	done  chan struct{}
	wg    sync.WaitGroup
}

func trackPIDs(t *testing.T, srv *vaulttest.Server) *pidTracker {
	t.Helper()
	p := &pidTracker{done: make(chan struct{})}
	first, err := srv.PluginPIDs()
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		prev := map[int]bool{}
		for _, pid := range first {
			prev[pid] = true
		}
		for {
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond): // sampling interval
			}
			now, err := srv.PluginPIDs()
			if err != nil {
				continue
			}
			cur := map[int]bool{}
			for _, pid := range now {
				cur[pid] = true
			}
			p.mu.Lock()
			for pid := range prev {
				if !cur[pid] {
					p.exits = append(p.exits, exit{pid: pid, at: time.Now()})
				}
			}
			p.mu.Unlock()
			prev = cur
		}
	}()
	return p
}

func (p *pidTracker) stop() []exit {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]exit(nil), p.exits...)
}

// counterNames are the metrics that only grow: they come from the stored
// log, so no reload, restart or kill may lower them.
var counterNames = []string{"issued_total", "rotated_total", "revoked_total"}

func readCounters(t *testing.T, tr *traffic) map[string]float64 {
	t.Helper()
	r, err := do(tr.addr, tr.token, "GET", tr.mount+"/metrics", nil, nil, nil)
	if err != nil || r.status != 200 {
		t.Fatalf("%s: metrics: %v %d %s", tr.mount, err, r.status, r.errs)
	}
	out := map[string]float64{}
	for _, n := range counterNames {
		v, ok := r.data[n].(float64)
		if !ok {
			t.Fatalf("%s: metrics has no number %s: %v", tr.mount, n, r.data[n])
		}
		out[n] = v
	}
	return out
}

// checkCounters asserts the counters never went down from one moment to
// the next, and that issuance counts at least every key the soak issued.
func checkCounters(t *testing.T, snaps map[string]map[string]float64, trs []*traffic) {
	t.Helper()
	order := []string{"before reload", "after reload", "before restart", "after restart", "after kill"}
	for _, tr := range trs {
		for i := 1; i < len(order); i++ {
			a, b := snaps[order[i-1]+" "+tr.mount], snaps[order[i]+" "+tr.mount]
			for _, n := range counterNames {
				if b[n] < a[n] {
					t.Errorf("%s: %s went down from %v (%s) to %v (%s)", tr.mount, n, a[n], order[i-1], b[n], order[i])
				}
			}
		}
		last := snaps["after kill "+tr.mount]
		if last["issued_total"] < float64(tr.issued) {
			t.Errorf("%s: issued_total %v, but the soak alone issued %d keys", tr.mount, last["issued_total"], tr.issued)
		}
	}
}

// checkRecovered checks a mount right after a recovery, with no traffic
// and no waiting: every key the inventory lists reads back, has its
// issuance in the log and verifies as its state says; every key the soak
// revoked stays revoked; the log's chain is valid; rate limits hold.
func checkRecovered(t *testing.T, tr *traffic, when string) {
	t.Helper()
	inv, err := do(tr.addr, tr.token, "GET", tr.mount+"/inventory", nil, nil, nil)
	if err != nil || inv.status != 200 {
		t.Fatalf("%s %s: inventory: %v %d %s", tr.mount, when, err, inv.status, inv.errs)
	}
	issued := map[string]bool{}
	for _, e := range logEntries(t, tr) {
		if e["type"] == "key.issued" {
			issued[fmt.Sprint(e["client"])+"/"+fmt.Sprint(e["key"])] = true
		}
	}
	items, _ := inv.data["keys"].([]interface{})
	var problems []string
	checked := 0
	for _, raw := range items {
		it, _ := raw.(map[string]interface{})
		name := fmt.Sprint(it["client"]) + "/" + fmt.Sprint(it["name"])
		r, err := do(tr.addr, tr.token, "GET", tr.mount+"/keys/"+name, nil, nil, nil)
		if err != nil || r.status != 200 {
			problems = append(problems, fmt.Sprintf("%s is listed but does not read: %v %d %s", name, err, r.status, r.errs))
			continue
		}
		if !issued[name] {
			problems = append(problems, fmt.Sprintf("%s (%v) has no key.issued entry in the log", name, r.data["state"]))
		}
		state := fmt.Sprint(r.data["state"])
		if state != fmt.Sprint(it["state"]) && it["state"] != "locked" {
			problems = append(problems, fmt.Sprintf("%s: inventory says %v, the key %s", name, it["state"], state))
		}
		secret, ok := r.data["key"].(string)
		if !ok || strings.HasPrefix(name, "svc/limited") {
			continue
		}
		checked++
		v, err := do(tr.addr, tr.token, "POST", tr.mount+"/verify", nil, map[string]interface{}{"key": secret, "audience": "orders-api"}, nil)
		if err != nil || v.status != 200 {
			problems = append(problems, fmt.Sprintf("%s: verify: %v %d %s", name, err, v.status, v.errs))
			continue
		}
		if active := v.data["active"] == true; active != (state == "active") {
			problems = append(problems, fmt.Sprintf("%s is %s but its current secret verifies active=%v code=%v", name, state, active, v.data["code"]))
		}
	}
	tr.mu.Lock()
	revoked := make(map[string]string, len(tr.revoked))
	for k, v := range tr.revoked {
		revoked[k] = v
	}
	tr.mu.Unlock()
	for name, secret := range revoked {
		v, err := do(tr.addr, tr.token, "POST", tr.mount+"/verify", nil, map[string]interface{}{"key": secret, "audience": "orders-api"}, nil)
		if err != nil || v.status != 200 || v.data["active"] != false || v.data["code"] != "revoked" {
			problems = append(problems, fmt.Sprintf("%s was revoked but verifies %v %d %v", name, err, v.status, v.data))
		}
	}
	lv, err := do(tr.addr, tr.token, "GET", tr.mount+"/log/verify", nil, nil, nil)
	if err != nil || lv.status != 200 || lv.data["valid"] != true {
		problems = append(problems, fmt.Sprintf("log/verify: %v %d %v %s", err, lv.status, lv.data, lv.errs))
	}
	problems = append(problems, checkRateLimit(tr)...)
	sort.Strings(problems)
	for i, p := range problems {
		if i == 15 {
			t.Errorf("%s %s: … and %d more", tr.mount, when, len(problems)-15)
			break
		}
		t.Errorf("%s %s: %s", tr.mount, when, p)
	}
	t.Logf("%s %s: %d keys listed, %d verified, %d revoked checked", tr.mount, when, len(items), checked, len(revoked))
}

// checkRateLimit uses the rate-limited key (3 verifies an hour): a fresh
// secret answers 3 times and is then refused with rate_limited.
func checkRateLimit(tr *traffic) []string {
	r, err := do(tr.addr, tr.token, "POST", tr.mount+"/keys/svc/limited-0/rotate", nil, map[string]interface{}{}, nil)
	if err != nil || r.status != 200 {
		return []string{fmt.Sprintf("rotating the rate-limited key: %v %d %s", err, r.status, r.errs)}
	}
	secret, _ := r.data["key"].(string)
	var codes []string
	for i := 0; i < 4; i++ {
		v, err := do(tr.addr, tr.token, "POST", tr.mount+"/verify", nil, map[string]interface{}{"key": secret, "audience": "orders-api"}, nil)
		if err != nil || v.status != 200 {
			return []string{fmt.Sprintf("verifying the rate-limited key: %v %d %s", err, v.status, v.errs)}
		}
		if v.data["active"] == true {
			codes = append(codes, "active")
		} else {
			codes = append(codes, fmt.Sprint(v.data["code"]))
		}
	}
	// The window is per key and the earlier verifies of this key's
	// previous secret count too, so only the limit's end is certain.
	if codes[3] != "rate_limited" {
		return []string{fmt.Sprintf("rate limit of 3 per hour not enforced: %v", codes)}
	}
	return nil
}
