// Command bench measures the verify hot path against the plugin floor in a
// real Vault (make bench).
//
// It starts Vault with the freshly built plugin (internal/vaulttest, no
// audit device), then drives a fixed-duration HTTP load from concurrent
// keep-alive clients at these targets:
//
//	floor       apikeys/info: the cheapest plugin path, touching no storage
//	floor_post  apikeys/info written (POST): the same, plus the existence
//	            check round trip Vault makes to a plugin before every write
//	verify      GET apikeys/verify with valid keys (rotating through a set)
//	            in the X-Api-Key header: the form API gateways use
//	verify_post POST apikeys/verify with the same keys in the body
//	malformed   GET apikeys/verify with a malformed key in the header
//	kv          a KV v2 read on the same server
//
// Within each round the targets take turns in short slices (the order
// rotates) so machine noise hits all of them alike; req/s, p50 and p99 are
// medians over rounds, ratios the median of the per-round ratios, among
// them verify_floor_ratio=<verify/floor> (the GET form over the GET floor)
// and verify_post_floor_ratio=<verify_post/floor>. The CPU time the Vault server and
// the plugin process spend per request is printed too (from /proc), which
// shows where a difference comes from.
//
// Note that Vault makes an existence-check round trip to a plugin before
// every write (POST/PUT): floor_post shows that cost on the floor itself,
// verify_post on verify. The GET form avoids it; its key travels in a
// request header (never in a URL), which the mount passes through to the
// plugin (passthrough_request_headers, see vaulttest.MountAt).
//
// A memory phase then issues -keys keys through the API, verifies a sample
// of them and prints the plugin process's resident memory (plugin_rss_mb=).
//
// An issuance phase last measures, in the same way, on the mount the memory
// phase filled:
//
//	floor_post  as above: the fair floor for a write
//	issue       POST apikeys/keys/<client>/<new name> with the bench role:
//	            each request issues a new key
//
// and prints issue_floor_ratio=<issue/floor_post> and issue_rps= (keys/s).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var (
	flagKeys        = flag.Int("keys", 100000, "keys to issue in the memory phase (0 skips it)")
	flagDuration    = flag.Duration("duration", 3*time.Second, "load time per target per round")
	flagSlice       = flag.Duration("slice", 500*time.Millisecond, "targets take turns in slices this long within a round")
	flagRounds      = flag.Int("rounds", 5, "rounds; each runs every target once")
	flagConcurrency = flag.Int("concurrency", 8, "concurrent HTTP clients")
	flagVerifyKeys  = flag.Int("verify-keys", 1000, "valid keys the verify target rotates through")
	flagSample      = flag.Int("sample", 2000, "issued keys verified in the memory phase")
	flagClients     = flag.Int("clients", 64, "API clients the keys are spread over")
	flagWarmup      = flag.Duration("warmup", time.Second, "warm-up load per target before the rounds")
	flagTargets     = flag.String("targets", "floor,floor_post,verify,verify_post,malformed,kv", "targets to measure (floor and verify are required for the ratio)")
	flagIssue       = flag.Bool("issue", true, "after the memory phase, measure issuance against floor_post on the mount it filled")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	srv   *vaulttest.Server
	http  *http.Client
	mount string
	// pids of the Vault server and the plugin, for CPU accounting.
	vaultPID, pluginPID int
}

func run() error {
	ctx := context.Background()
	fmt.Println("starting vault with the plugin...")
	srv, err := vaulttest.Start(ctx, vaulttest.Options{NoAudit: true, LogLevel: "warn"})
	if err != nil {
		return err
	}
	b := &bench{
		srv:   srv,
		mount: srv.Mount,
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        4 * *flagConcurrency,
				MaxIdleConnsPerHost: 4 * *flagConcurrency,
				IdleConnTimeout:     time.Minute,
			},
		},
	}
	defer b.stop()
	if err := b.setup(); err != nil {
		return err
	}

	fmt.Printf("issuing %d keys for the verify target...\n", *flagVerifyKeys)
	keys, err := b.issueKeys("v", *flagVerifyKeys, *flagVerifyKeys)
	if err != nil {
		return err
	}
	targets, err := b.targets(keys)
	if err != nil {
		return err
	}
	if b.pluginPID, err = pluginPID(filepath.Join(srv.PluginDir, vaulttest.PluginBinary)); err != nil {
		return err
	}
	if b.vaultPID, err = benchkit.FindPID(func(cmdline string) bool {
		return strings.Contains(cmdline, "-config="+filepath.Join(srv.Dir, "config.hcl"))
	}); err != nil {
		return err
	}
	if err := b.throughput(targets); err != nil {
		return err
	}
	if *flagKeys > 0 {
		if err := b.memory(); err != nil {
			return err
		}
	}
	if *flagIssue {
		return b.issuance()
	}
	return nil
}

// stop ends Vault and makes sure the plugin process ends with it: a Vault
// that had to be killed (it is given 10s to shut down) cannot stop its
// plugins itself.
func (b *bench) stop() {
	pid, _ := pluginPID(filepath.Join(b.srv.PluginDir, vaulttest.PluginBinary))
	b.srv.Stop()
	if pid > 0 {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill() // no-op error if it already exited
		}
	}
}

// setup creates the clients and role, and a KV v2 secret to read.
func (b *bench) setup() error {
	for i := 0; i < *flagClients; i++ {
		if _, err := b.do("POST", "/v1/"+b.mount+"/clients/"+clientName(i), map[string]interface{}{"owner": "bench", "type": "internal"}); err != nil {
			return err
		}
	}
	if _, err := b.do("POST", "/v1/"+b.mount+"/roles/bench", map[string]interface{}{
		"scopes": "orders:read,orders:write", "environment": "prod", "retrievable": false,
	}); err != nil {
		return err
	}
	// Dev mode mounts KV v2 at secret/; mount it if this server did not.
	if _, err := b.do("POST", "/v1/secret/data/bench", map[string]interface{}{"data": map[string]string{"hello": "world"}}); err != nil {
		if _, err := b.do("POST", "/v1/sys/mounts/secret", map[string]interface{}{"type": "kv", "options": map[string]string{"version": "2"}}); err != nil {
			return err
		}
		time.Sleep(time.Second) // KV v2 upgrades its storage asynchronously after mounting
		if _, err := b.do("POST", "/v1/secret/data/bench", map[string]interface{}{"data": map[string]string{"hello": "world"}}); err != nil {
			return err
		}
	}
	return nil
}

func clientName(i int) string { return fmt.Sprintf("bench-%03d", i) }

// do sends one JSON request and returns the decoded "data".
func (b *bench) do(method, path string, body interface{}) (map[string]interface{}, error) {
	return benchkit.Do(b.http, b.srv.Addr, b.srv.Token, method, path, body)
}

// issueKeys issues n keys named <prefix>-<i>, spread over the clients, from
// concurrent workers, and returns every keep-th plaintext (keep >= n: all).
func (b *bench) issueKeys(prefix string, n, keep int) ([]string, error) {
	return benchkit.Issuer{
		Do: b.do,
		Path: func(i int) string {
			return fmt.Sprintf("/v1/%s/keys/%s/%s-%d", b.mount, clientName(i%*flagClients), prefix, i)
		},
		Body:    map[string]interface{}{"role": "bench"},
		Workers: *flagConcurrency,
	}.Issue(n, keep)
}

// target is one kind of request the load generator sends.
type target struct {
	name string
	// request builds the i-th request.
	request func(i int) *http.Request
	// check validates a response body (nil: status only).
	check func(body []byte) bool
}

func (b *bench) targets(keys []string) ([]target, error) {
	get := func(path string) func(int) *http.Request {
		return func(int) *http.Request {
			req, _ := http.NewRequest("GET", b.srv.Addr+path, nil)
			req.Header.Set("X-Vault-Token", b.srv.Token)
			return req
		}
	}
	// getKey sends the keys in the X-Api-Key header, as gateways do.
	getKey := func(path string, keys []string) func(int) *http.Request {
		return func(i int) *http.Request {
			req, _ := http.NewRequest("GET", b.srv.Addr+path, nil)
			req.Header.Set("X-Vault-Token", b.srv.Token)
			req.Header.Set("X-Api-Key", keys[i%len(keys)])
			return req
		}
	}
	post := func(path string, bodies [][]byte) func(int) *http.Request {
		return func(i int) *http.Request {
			req, _ := http.NewRequest("POST", b.srv.Addr+path, bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("X-Vault-Token", b.srv.Token)
			req.Header.Set("Content-Type", "application/json")
			return req
		}
	}
	var valid [][]byte
	for _, k := range keys {
		body, _ := json.Marshal(map[string]string{"key": k})
		valid = append(valid, body)
	}
	malformed := "ak_prod_0000000000000000000000000000000000000000000xxxxxx"
	active := []byte(`"active":true`)
	inactive := []byte(`"code":"malformed"`)
	ts := []target{
		{name: "floor", request: get("/v1/" + b.mount + "/info"), check: func(body []byte) bool { return bytes.Contains(body, []byte(`"version"`)) }},
		{name: "floor_post", request: post("/v1/"+b.mount+"/info", [][]byte{[]byte("{}")}), check: func(body []byte) bool { return bytes.Contains(body, []byte(`"version"`)) }},
		{name: "verify", request: getKey("/v1/"+b.mount+"/verify", keys), check: func(body []byte) bool { return bytes.Contains(body, active) }},
		{name: "verify_post", request: post("/v1/"+b.mount+"/verify", valid), check: func(body []byte) bool { return bytes.Contains(body, active) }},
		{name: "malformed", request: getKey("/v1/"+b.mount+"/verify", []string{malformed}), check: func(body []byte) bool { return bytes.Contains(body, inactive) }},
		{name: "kv", request: get("/v1/secret/data/bench"), check: func(body []byte) bool { return bytes.Contains(body, []byte(`"hello"`)) }},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*flagTargets, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var chosen []target
	for _, t := range ts {
		if want[t.name] {
			chosen = append(chosen, t)
		}
	}
	ts = chosen
	// Every target must answer as expected before it is measured.
	for _, t := range ts {
		resp, err := b.http.Do(t.request(0))
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !t.check(body) {
			return nil, fmt.Errorf("target %s answered HTTP %d: %s", t.name, resp.StatusCode, body)
		}
	}
	return ts, nil
}

// result of one target in one round.
type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
	// CPU time per request of the Vault server and the plugin process.
	vaultCPU, pluginCPU time.Duration
}

// slice is the raw outcome of running one target for a while.
type slice struct {
	lats                []time.Duration
	elapsed             time.Duration
	errors              int64
	vaultCPU, pluginCPU time.Duration
}

// add merges another slice of the same target.
func (s *slice) add(o slice) {
	s.lats = append(s.lats, o.lats...)
	s.elapsed += o.elapsed
	s.errors += o.errors
	s.vaultCPU += o.vaultCPU
	s.pluginCPU += o.pluginCPU
}

func (s slice) result() result {
	all := s.lats
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{errors: s.errors}
	if len(all) > 0 && s.elapsed > 0 {
		r.rps = float64(len(all)) / s.elapsed.Seconds()
		r.vaultCPU = s.vaultCPU / time.Duration(len(all))
		r.pluginCPU = s.pluginCPU / time.Duration(len(all))
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// load runs t from the concurrent clients for d.
func (b *bench) load(t target, d time.Duration) slice {
	var (
		wg      sync.WaitGroup
		errs    atomic.Int64
		counter atomic.Int64
	)
	lats := make([][]time.Duration, *flagConcurrency)
	vault0, plugin0 := benchkit.CPUTime(b.vaultPID), benchkit.CPUTime(b.pluginPID)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < *flagConcurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			own := make([]time.Duration, 0, 4096)
			for i := w; ; i += *flagConcurrency {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				resp, err := b.http.Do(t.request(int(counter.Add(1))))
				if err != nil {
					errs.Add(1)
					continue
				}
				buf = buf[:0]
				body := bytes.NewBuffer(buf)
				_, _ = body.ReadFrom(resp.Body)
				resp.Body.Close()
				own = append(own, time.Since(t0))
				// Checking every 16th body keeps the generator light.
				if resp.StatusCode != 200 || (i%16 == 0 && !t.check(body.Bytes())) {
					errs.Add(1)
				}
			}
			lats[w] = own
		}(w)
	}
	wg.Wait()
	out := slice{elapsed: time.Since(start), errors: errs.Load()}
	out.vaultCPU = benchkit.CPUTime(b.vaultPID) - vault0
	out.pluginCPU = benchkit.CPUTime(b.pluginPID) - plugin0
	for _, l := range lats {
		out.lats = append(out.lats, l...)
	}
	return out
}

func (b *bench) throughput(ts []target) error {
	results, err := b.measure(ts)
	if err != nil {
		return err
	}
	fmt.Printf("verify_floor_ratio=%.3f\n", ratio(results, "verify", "floor"))
	fmt.Printf("verify_post_floor_ratio=%.3f\n", ratio(results, "verify_post", "floor"))
	fmt.Printf("verify_floor_post_ratio=%.3f\n", ratio(results, "verify_post", "floor_post"))
	fmt.Printf("floor_post_floor_ratio=%.3f\n", ratio(results, "floor_post", "floor"))
	fmt.Printf("malformed_floor_ratio=%.3f\n", ratio(results, "malformed", "floor"))
	fmt.Printf("kv_floor_ratio=%.3f\n", ratio(results, "kv", "floor"))
	fmt.Printf("verify_kv_ratio=%.3f\n", ratio(results, "verify", "kv"))
	fmt.Printf("verify_post_verify_ratio=%.3f\n", ratio(results, "verify_post", "verify"))
	return nil
}

// measure warms the targets up, runs the rounds and prints each target's
// medians; it returns every round's result of every target.
func (b *bench) measure(ts []target) (map[string][]result, error) {
	fmt.Printf("warm-up: %s per target\n", *flagWarmup)
	for _, t := range ts {
		b.load(t, *flagWarmup)
	}
	// Each round gives every target -duration in short slices, the
	// targets taking turns slice by slice (in an order that rotates), so a
	// burst of load from elsewhere on the machine hits all of them alike.
	slices := int((*flagDuration + *flagSlice - 1) / *flagSlice)
	if slices < 1 {
		slices = 1
	}
	per := *flagDuration / time.Duration(slices)
	fmt.Printf("measuring: %d rounds x %s per target (%d interleaved slices of %s), %d concurrent clients\n",
		*flagRounds, *flagDuration, slices, per, *flagConcurrency)
	results := map[string][]result{}
	for r := 0; r < *flagRounds; r++ {
		acc := make([]slice, len(ts))
		for sl := 0; sl < slices; sl++ {
			for j := range ts {
				k := (r + sl + j) % len(ts)
				acc[k].add(b.load(ts[k], per))
			}
		}
		var line []string
		for k, t := range ts {
			res := acc[k].result()
			if res.errors > 0 {
				return nil, fmt.Errorf("round %d: target %s had %d failed requests", r+1, t.name, res.errors)
			}
			results[t.name] = append(results[t.name], res)
			line = append(line, fmt.Sprintf("%s=%.0f/s", t.name, res.rps))
		}
		fmt.Printf("  round %d: %s\n", r+1, strings.Join(line, " "))
	}
	med := map[string]result{}
	fmt.Printf("\n%-11s %12s %10s %10s %14s %14s\n", "target", "req/s", "p50", "p99", "vault cpu/req", "plugin cpu/req")
	for _, t := range ts {
		rs := results[t.name]
		m := result{
			rps:       median(rs, func(r result) float64 { return r.rps }),
			p50:       time.Duration(median(rs, func(r result) float64 { return float64(r.p50) })),
			p99:       time.Duration(median(rs, func(r result) float64 { return float64(r.p99) })),
			vaultCPU:  time.Duration(median(rs, func(r result) float64 { return float64(r.vaultCPU) })),
			pluginCPU: time.Duration(median(rs, func(r result) float64 { return float64(r.pluginCPU) })),
		}
		med[t.name] = m
		fmt.Printf("%-11s %12.0f %10s %10s %14s %14s\n", t.name, m.rps, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), m.vaultCPU.Round(time.Microsecond), m.pluginCPU.Round(time.Microsecond))
	}
	fmt.Println()
	for _, t := range ts {
		fmt.Printf("%s_rps=%.0f %s_p50_us=%d %s_p99_us=%d\n", t.name, med[t.name].rps, t.name, med[t.name].p50.Microseconds(), t.name, med[t.name].p99.Microseconds())
	}
	return results, nil
}

// ratio is the median of the per-round ratios of target a's rate to b's:
// both ran in the same round, so this cancels slow drifts of the machine.
func ratio(results map[string][]result, a, b string) float64 {
	if len(results[a]) == 0 || len(results[b]) == 0 {
		return 0
	}
	var rs []float64
	for i := range results[a] {
		rs = append(rs, results[a][i].rps/results[b][i].rps)
	}
	sort.Float64s(rs)
	return rs[len(rs)/2]
}

func median(rs []result, f func(result) float64) float64 {
	vals := make([]float64, len(rs))
	for i, r := range rs {
		vals[i] = f(r)
	}
	sort.Float64s(vals)
	return vals[len(vals)/2]
}

// memory issues many keys, verifies a sample and reports the plugin's RSS.
func (b *bench) memory() error {
	fmt.Printf("\nmemory phase: issuing %d keys through the API...\n", *flagKeys)
	start := time.Now()
	sample, err := b.issueKeys("m", *flagKeys, *flagSample)
	if err != nil {
		return err
	}
	fmt.Printf("issued %d keys in %s (%.0f/s)\n", *flagKeys, time.Since(start).Round(time.Second), float64(*flagKeys)/time.Since(start).Seconds())
	var (
		bad, next atomic.Int64
		wg        sync.WaitGroup
		errMu     sync.Mutex
		firstErr  error
	)
	for w := 0; w < *flagConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sample) {
					return
				}
				data, err := b.do("POST", "/v1/"+b.mount+"/verify", map[string]string{"key": sample[i]})
				if err != nil {
					errMu.Lock()
					firstErr = err
					errMu.Unlock()
					return
				}
				if data["active"] != true {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if bad := bad.Load(); bad > 0 {
		return fmt.Errorf("%d of %d sampled keys did not verify", bad, len(sample))
	}
	fmt.Printf("verified a sample of %d issued keys: all active\n", len(sample))
	pid, err := pluginPID(filepath.Join(b.srv.PluginDir, vaulttest.PluginBinary))
	if err != nil {
		return err
	}
	rss, err := rssMB(pid)
	if err != nil {
		return err
	}
	fmt.Printf("plugin_keys=%d\nplugin_rss_mb=%.1f\n", *flagKeys, rss)
	return nil
}

// pluginPID finds the running plugin process by its executable.
func pluginPID(binary string) (int, error) {
	pid, err := benchkit.FindPID(func(cmdline string) bool { return strings.HasPrefix(cmdline, binary+"\x00") })
	if err != nil {
		return 0, fmt.Errorf("plugin process (%s): %w", binary, err)
	}
	return pid, nil
}

// rssMB reads VmRSS of a process in MiB.
func rssMB(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseFloat(f[1], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("VmRSS not found for pid %d", pid)
}

// issuance measures key issuance side by side with floor_post on the mount
// as the earlier phases left it (with -keys 100000, 100k keys and more).
func (b *bench) issuance() error {
	fmt.Printf("\nissuance phase: a mount holding %d keys\n", *flagVerifyKeys+*flagKeys)
	// Every request issues a key of its own name, spread over the clients
	// as the memory phase's are.
	var next atomic.Int64
	issue := func(int) *http.Request {
		i := int(next.Add(1))
		path := fmt.Sprintf("/v1/%s/keys/%s/i-%d", b.mount, clientName(i%*flagClients), i)
		req, _ := http.NewRequest("POST", b.srv.Addr+path, strings.NewReader(`{"role":"bench"}`))
		req.Header.Set("X-Vault-Token", b.srv.Token)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	post := func(int) *http.Request {
		req, _ := http.NewRequest("POST", b.srv.Addr+"/v1/"+b.mount+"/info", strings.NewReader("{}"))
		req.Header.Set("X-Vault-Token", b.srv.Token)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	ts := []target{
		{name: "floor_post", request: post, check: func(body []byte) bool { return bytes.Contains(body, []byte(`"version"`)) }},
		{name: "issue", request: issue, check: func(body []byte) bool { return bytes.Contains(body, []byte(`"key":"ak_`)) }},
	}
	results, err := b.measure(ts)
	if err != nil {
		return err
	}
	fmt.Printf("issued_during_phase=%d\n", next.Load())
	fmt.Printf("issue_floor_ratio=%.3f\n", ratio(results, "issue", "floor_post"))
	return nil
}
