// Package soak is the soak gate: a real Vault on Raft storage with two
// mounts under continuous mixed traffic through at least three periodic
// ticks, a plugin reload in the middle, then a Vault restart and a kill -9
// of the plugin process mid-traffic. Nothing may answer 5xx outside the
// kill, no plugin process may end other than by the reload, the restart
// and the kill, and right after recovery every key is whole.
package soak

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

const (
	// minTicks is how many periodic ticks the traffic must run through.
	minTicks = 3
	// tickDeadline bounds the wait for the ticks: Vault runs them about
	// once a minute, and the first one can only rotate keys a minute old.
	tickDeadline    = 330 * time.Second
	workersPerMount = 3
	seed            = 20261204
)

// window is a span of time in which an event (reload, restart, kill) may
// explain a plugin exit or, for the kill only, a 5xx.
type window struct {
	name       string
	start, end time.Time
}

func (w window) holds(t time.Time) bool {
	return !w.start.IsZero() && !t.Before(w.start) && (w.end.IsZero() || !t.After(w.end))
}

func TestSoak(t *testing.T) {
	began := time.Now()
	ctx := context.Background()
	srv := vaulttest.StartRaftForTest(t)
	second := "soak-b"
	if err := srv.MountAt(ctx, second); err != nil {
		t.Fatal(err)
	}
	var trs []*traffic
	for _, m := range []string{srv.Mount, second} {
		trs = append(trs, setupMount(t, srv, m))
	}
	pids := trackPIDs(t, srv)
	counters := map[string]map[string]float64{}
	snapCounters := func(label string) {
		for _, tr := range trs {
			counters[label+" "+tr.mount] = readCounters(t, tr)
		}
	}

	// Phase 1: traffic through the ticks, with a plugin reload after the
	// first tick.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, tr := range trs {
		tr.run(seed+uint64(i), workersPerMount, stop, &wg)
	}
	firstTick := waitTicks(t, trs[0], 1, began.Add(tickDeadline))
	t.Logf("first tick seen at %v", firstTick.Sub(began).Round(time.Second))
	snapCounters("before reload")
	reload := window{name: "reload", start: time.Now()}
	if _, err := srv.Client.Logical().Write("sys/plugins/reload/backend", map[string]interface{}{"plugin": vaulttest.PluginName}); err != nil {
		t.Fatalf("vault plugin reload: %v", err)
	}
	waitServing(t, trs)
	reload.end = time.Now().Add(5 * time.Second)
	snapCounters("after reload")
	waitTicks(t, trs[0], minTicks, began.Add(tickDeadline))
	close(stop)
	wg.Wait()

	// Phase 2: restart Vault on its Raft data, then check at once.
	snapCounters("before restart")
	restart := window{name: "restart", start: time.Now()}
	if err := srv.Restart(ctx, false); err != nil {
		t.Fatalf("restarting vault: %v", err)
	}
	waitServing(t, trs)
	restart.end = time.Now().Add(5 * time.Second)
	for _, tr := range trs {
		checkRecovered(t, tr, "after the restart")
	}
	snapCounters("after restart")

	// Phase 3: kill -9 the plugin mid-traffic; Vault starts it again on
	// the next request.
	stop = make(chan struct{})
	for i, tr := range trs {
		tr.run(seed+100+uint64(i), workersPerMount, stop, &wg)
	}
	time.Sleep(5 * time.Second) // traffic running before the kill
	kill := window{name: "kill", start: time.Now()}
	killed, err := srv.KillPlugin()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed plugin process %v", killed)
	waitServing(t, trs)
	kill.end = time.Now().Add(2 * time.Second)
	time.Sleep(5 * time.Second) // traffic after the recovery
	close(stop)
	wg.Wait()
	for _, tr := range trs {
		checkRecovered(t, tr, "after the plugin kill")
	}
	snapCounters("after kill")
	checkCounters(t, counters, trs)

	// Figures and verdicts.
	exits := pids.stop()
	windows := []window{reload, restart, kill}
	var unexplained []string
	byWindow := map[string]int{}
	for _, e := range exits {
		explained := false
		for _, w := range windows {
			if w.holds(e.at) {
				byWindow[w.name]++
				explained = true
				break
			}
		}
		if !explained {
			unexplained = append(unexplained, fmt.Sprintf("pid %d at %v", e.pid, e.at.Sub(began).Round(time.Millisecond)))
		}
	}
	classes := map[int]int{}
	var total, fiveOutside, fiveInKill, fiveInReload, noAnswer int
	var fiveDetails []string
	for _, tr := range trs {
		for _, s := range tr.samples {
			total++
			classes[s.status/100]++
			switch {
			case s.status == 0:
				noAnswer++
				if !kill.holds(s.at) {
					fiveDetails = append(fiveDetails, fmt.Sprintf("%s %s: no answer at %v: %s", tr.mount, s.action, s.at.Sub(began).Round(time.Millisecond), s.detail))
				}
			case s.status >= 500 && kill.holds(s.at):
				fiveInKill++
			case s.status >= 500 && reload.holds(s.at) && cutByReload(s.detail):
				fiveInReload++
			case s.status >= 500:
				fiveOutside++
				fiveDetails = append(fiveDetails, fmt.Sprintf("%s %s: %d at %v: %s", tr.mount, s.action, s.status, s.at.Sub(began).Round(time.Millisecond), s.detail))
			}
		}
	}
	ticks := countTicks(t, trs[0])
	panics := vaulttest.PanicLines(t, srv.LogPath)
	fmt.Printf("soak summary: %d requests (2xx=%d 3xx=%d 4xx=%d 5xx=%d, no answer=%d) on %d mounts in %v; 5xx outside the kill %d, in the kill window %d, cut by Vault's reload %d; ticks covered %d; plugin exits %d (reload %d, restart %d, kill %d, unexplained %d); panic lines %d\n",
		total, classes[2], classes[3], classes[4], classes[5], noAnswer, len(trs), time.Since(began).Round(time.Second),
		fiveOutside, fiveInKill, fiveInReload, ticks, len(exits), byWindow["reload"], byWindow["restart"], byWindow["kill"], len(unexplained), len(panics))

	if ticks < minTicks {
		t.Errorf("the traffic ran through %d ticks, want at least %d", ticks, minTicks)
	}
	sort.Strings(fiveDetails)
	for i, d := range fiveDetails {
		if i == 20 {
			t.Errorf("… and %d more", len(fiveDetails)-20)
			break
		}
		t.Errorf("outside the kill window: %s", d)
	}
	if len(unexplained) > 0 {
		t.Errorf("plugin processes ended outside the reload, restart and kill: %v", unexplained)
	}
	if byWindow["kill"] == 0 {
		t.Errorf("the killed plugin process was not seen to end")
	}
	if len(panics) > 0 {
		t.Errorf("%d panic lines in the server log, first: %s", len(panics), panics[0])
	}
}

// cutByReload tells the one 5xx whose cause is in Vault itself: "vault
// plugin reload" reloads each mount in turn, and for a multiplexed plugin
// each reload kills the one process serving every mount ("killed external
// plugin process for reload" in Vault's log). A request another mount has
// in flight in that process fails in Vault with the broken connection
// (Unavailable, EOF), with the connection Vault is closing for the reload
// (Canceled: "grpc: the client connection is closing"), or as "internal
// error" when it was Vault's existence check that broke ("failed to run
// existence check"). The plugin never sees these requests fail: its
// process is gone.
func cutByReload(detail string) bool {
	return strings.Contains(detail, "code = Unavailable") ||
		strings.Contains(detail, "grpc: the client connection is closing") ||
		strings.TrimSpace(strings.TrimPrefix(detail, "1 error occurred:\n\t* ")) == "internal error"
}

// setupMount creates the clients, roles and keys of one mount: "std" keys
// rotated by hand, "fast" keys the ticks rotate every minute, a leased
// role for the partner, and a rate-limited key.
func setupMount(t *testing.T, srv *vaulttest.Server, mount string) *traffic {
	t.Helper()
	tr := &traffic{addr: srv.Addr, token: srv.Token, mount: mount, keys: map[string]string{}, revoked: map[string]string{}}
	must := func(path string, body map[string]interface{}) reply {
		r, err := do(srv.Addr, srv.Token, "POST", mount+"/"+path, nil, body, nil)
		if err != nil || r.status >= 300 {
			t.Fatalf("setting up %s/%s: %v %d %s", mount, path, err, r.status, r.errs)
		}
		return r
	}
	must("clients/svc", map[string]interface{}{"owner": "team-orders", "type": "internal"})
	must("clients/partner", map[string]interface{}{"owner": "team-partners", "type": "external"})
	common := map[string]interface{}{"scopes": "orders:read,orders:write", "audiences": "orders-api", "environment": "prod"}
	role := func(name string, extra map[string]interface{}) {
		body := map[string]interface{}{}
		for k, v := range common {
			body[k] = v
		}
		for k, v := range extra {
			body[k] = v
		}
		must("roles/"+name, body)
	}
	role("std", map[string]interface{}{"rotation_period": "720h", "grace_period": "1h"})
	role("fast", map[string]interface{}{"rotation_period": "1m", "grace_period": "20s", "max_grace_period": "30s"})
	role("leased", map[string]interface{}{"ttl": "10m", "max_ttl": "20m"})
	role("limited", map[string]interface{}{"rotation_period": "720h", "grace_period": "1h", "rate_limit": 3, "rate_limit_window": "1h"})
	for i := 0; i < 4; i++ {
		tr.keys[fmt.Sprintf("svc/std-%d", i)] = must(fmt.Sprintf("keys/svc/std-%d", i), map[string]interface{}{"role": "std"}).data["key"].(string)
	}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("svc/fast-%d", i)
		tr.keys[name] = must(fmt.Sprintf("keys/svc/fast-%d", i), map[string]interface{}{"role": "fast"}).data["key"].(string)
		tr.fast = append(tr.fast, name)
	}
	must("keys/svc/limited-0", map[string]interface{}{"role": "limited"})
	return tr
}

// waitServing waits until every mount answers a verify again (after a
// reload, restart or kill) and returns.
func waitServing(t *testing.T, trs []*traffic) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for _, tr := range trs {
		for {
			r, err := do(tr.addr, tr.token, "GET", tr.mount+"/info", nil, nil, nil)
			if err == nil && r.status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer again: %v %d %s", tr.mount, err, r.status, r.errs)
			}
			time.Sleep(100 * time.Millisecond) // polling for recovery
		}
	}
}

// systemTimes returns the times of the scheduled rotations in the log
// (key.rotated by actor system), which only a tick makes. (Alerts are
// raised by the system too, but during verifies, at any time.)
func systemTimes(t *testing.T, tr *traffic) []time.Time {
	t.Helper()
	var out []time.Time
	for _, e := range logEntries(t, tr) {
		a, _ := e["actor"].(map[string]interface{})
		if fmt.Sprint(a["type"]) != "system" || e["type"] != "key.rotated" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["time"]))
		if err == nil {
			out = append(out, ts)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// countTicks groups background entries into ticks: a tick's work is
// written within seconds, and ticks are about a minute apart.
func countTicks(t *testing.T, tr *traffic) int {
	t.Helper()
	n := 0
	var last time.Time
	for _, ts := range systemTimes(t, tr) {
		if last.IsZero() || ts.Sub(last) > 20*time.Second {
			n++
		}
		last = ts
	}
	return n
}

// waitTicks waits until the log shows n ticks' work and returns when it saw
// the last.
func waitTicks(t *testing.T, tr *traffic, n int, deadline time.Time) time.Time {
	t.Helper()
	for {
		if countTicks(t, tr) >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d ticks rotated keys by %v", tr.mount, n, deadline.Format(time.RFC3339))
		}
		time.Sleep(2 * time.Second) // polling the log for the next tick
	}
}

// logEntries reads the mount's whole lifecycle log, page by page.
func logEntries(t *testing.T, tr *traffic) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	after := "0"
	for {
		r, err := do(tr.addr, tr.token, "GET", tr.mount+"/log", url.Values{"after": {after}, "limit": {"1000"}}, nil, nil)
		if err != nil || r.status != 200 {
			t.Fatalf("%s: reading the log: %v %d %s", tr.mount, err, r.status, r.errs)
		}
		entries, _ := r.data["entries"].([]interface{})
		for _, e := range entries {
			if m, ok := e.(map[string]interface{}); ok {
				out = append(out, m)
			}
		}
		next, ok := r.data["next_after"]
		if !ok || next == nil || len(entries) == 0 {
			return out
		}
		after = fmt.Sprint(next)
	}
}
