// Command bench-scale is the real-Vault half of make bench-scale (the
// in-process half, at a million keys, is BenchmarkScaleReport in backend/).
// Two Vault dev servers run side by side, each with its own plugin process:
// one mount of -small keys, one of -keys keys (1,000 keys per client),
// seeded through the API with benchkit.Issuer. It then reports, each as the
// ratio large/small:
//
//	start_verify_ms  the plugin process killed (as a crash or upgrade would)
//	                 until a verify of a seeded key answers active again
//	rss_mib          the plugin process's resident memory after that start
//	                 and a settling time (-settle), so what seeding left in
//	                 the heap is gone
//	idle_cpu_ms_per_min  plugin CPU time per minute while nothing is asked
//	                 of it: Vault's periodic ticks, the governance sweep
//	                 included, 10,000 keys a tick at both sizes (both
//	                 servers idle at once, -idle long, after the log tree
//	                 caught up with seeding)
//	scrape_ms        one GET metrics (JSON; medians of -rounds
//	                 rounds, the mounts alternating)
//	page_ms          one GET inventory?limit=100
//	verify_per_s     verifies of seeded keys per second, from -concurrency
//	                 clients for -rate-round (medians of -rounds rounds,
//	                 each small, large, large, small or the reverse; a
//	                 rate, so the bar is a floor)
//	issue_per_s      issuances per second, into a client of its own on
//	                 each mount, likewise
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var (
	flagKeys        = flag.Int("keys", 100000, "keys of the large mount")
	flagSmall       = flag.Int("small", 10000, "keys of the small mount")
	flagPerClient   = flag.Int("per-client", 1000, "keys per client")
	flagConcurrency = flag.Int("concurrency", 8, "concurrent HTTP clients while seeding (per server)")
	flagRounds      = flag.Int("rounds", 5, "rounds per measurement and mount")
	flagRequests    = flag.Int("requests", 5, "sequential requests per round")
	flagRateRound   = flag.Duration("rate-round", 5*time.Second, "length of one round of verify_per_s and issue_per_s")
	flagIdle        = flag.Duration("idle", 3*time.Minute, "idle window for the plugin's CPU time")
	flagSettle      = flag.Duration("settle", 90*time.Second, "wait after the plugin's restart before reading its memory")
	flagTimeout     = flag.Duration("timeout", 90*time.Minute, "give up after this long")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

// side is one server with its one seeded mount.
type side struct {
	label  string
	keys   int
	srv    *vaulttest.Server
	http   *http.Client
	sample []string     // plaintexts of seeded keys
	issued atomic.Int64 // keys issued by issue_per_s, which names them
}

func (s *side) do(method, path string, body interface{}) (map[string]interface{}, error) {
	return benchkit.Do(s.http, s.srv.Addr, s.srv.Token, method, path, body)
}

func (s *side) path(p string) string { return "/v1/" + s.srv.Mount + "/" + p }

func label(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	small := &side{label: label(*flagSmall), keys: *flagSmall}
	large := &side{label: label(*flagKeys), keys: *flagKeys}
	sides := []*side{small, large}
	fmt.Println("starting two vault servers with the plugin...")
	for _, s := range sides {
		srv, err := vaulttest.Start(ctx, vaulttest.Options{NoAudit: true, LogLevel: "warn"})
		if err != nil {
			return err
		}
		defer srv.Stop()
		s.srv = srv
		s.http = &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 4 * *flagConcurrency, MaxIdleConnsPerHost: 4 * *flagConcurrency, IdleConnTimeout: time.Minute,
		}}
	}
	// Both servers seed at once: the machine is shared anyway, and each
	// seeding waits on its own Vault.
	var wg sync.WaitGroup
	errs := make([]error, len(sides))
	for i, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.seed()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// What seeding left to do in the background (the log tree reaching
	// the entries the issuances appended) is work asked for, not the cost
	// of a mount's size at rest: it ends before anything is measured.
	for _, s := range sides {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("scale_real small_keys=%d large_keys=%d rounds=%d requests_per_round=%d\n", small.keys, large.keys, *flagRounds, *flagRequests)

	// Mount start: the plugin process is killed, and Vault starts it again
	// on the next request to the mount.
	var startMS [2]float64
	for i, s := range sides {
		if _, err := s.srv.KillPlugin(); err != nil {
			return err
		}
		begin := time.Now()
		for {
			d, err := s.do("POST", s.path("verify"), map[string]string{"key": s.sample[0]})
			if err == nil && d["active"] == true {
				break
			}
			if time.Since(begin) > 2*time.Minute {
				return fmt.Errorf("%s: verify did not answer active within 2 minutes of the plugin's restart: %v %v", s.label, d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		startMS[i] = float64(time.Since(begin).Microseconds()) / 1000
	}
	printCost("start_verify_ms", small, large, startMS[0], startMS[1])
	for _, s := range sides {
		for _, k := range s.sample {
			if d, err := s.do("POST", s.path("verify"), map[string]string{"key": k}); err != nil || d["active"] != true {
				return fmt.Errorf("%s: a seeded key does not verify after the restart: %v %v", s.label, d, err)
			}
		}
	}
	fmt.Printf("settling %s...\n", *flagSettle)
	time.Sleep(*flagSettle)
	var rss [2]float64
	for i, s := range sides {
		pid, err := pluginPID(s.srv)
		if err != nil {
			return err
		}
		if rss[i], err = rssMiB(pid); err != nil {
			return err
		}
	}
	printCost("rss_mib", small, large, rss[0], rss[1])

	fmt.Printf("idle for %s...\n", *flagIdle)
	var cpu0 [2]time.Duration
	var pids [2]int
	for i, s := range sides {
		pid, err := pluginPID(s.srv)
		if err != nil {
			return err
		}
		pids[i], cpu0[i] = pid, benchkit.CPUTime(pid)
	}
	time.Sleep(*flagIdle)
	var idle [2]float64
	for i := range sides {
		idle[i] = float64((benchkit.CPUTime(pids[i]) - cpu0[i]).Milliseconds()) / flagIdle.Minutes()
	}
	printCost("idle_cpu_ms_per_min", small, large, idle[0], idle[1])

	for _, q := range []struct{ name, path string }{
		{"scrape_ms", "metrics"},
		{"page_ms", "inventory?limit=100"},
	} {
		var rs, rl []float64
		for r := 0; r < *flagRounds; r++ {
			order := []*side{small, large}
			if r%2 == 1 {
				order = []*side{large, small}
			}
			for _, s := range order {
				lat, err := s.round(ctx, s.path(q.path))
				if err != nil {
					return fmt.Errorf("%s on %s: %w", q.name, s.label, err)
				}
				if s == small {
					rs = append(rs, lat)
				} else {
					rl = append(rl, lat)
				}
			}
		}
		printCost(q.name, small, large, benchkit.Median(rs), benchkit.Median(rl))
	}
	return rates(sides)
}

// rates measures verify and issuance throughput through Vault's API on
// both mounts, in rounds of both sizes back to back.
func rates(sides []*side) error {
	for _, s := range sides {
		if _, err := s.do("POST", s.path("clients/"+rateClient), map[string]interface{}{"owner": "team-bench", "type": "internal"}); err != nil {
			return err
		}
	}
	for _, q := range []struct {
		name string
		call func(s *side, i int) error
	}{
		{"verify_per_s", func(s *side, i int) error {
			d, err := s.do("POST", s.path("verify"), map[string]string{"key": s.sample[i%len(s.sample)]})
			if err == nil && d["active"] != true {
				err = fmt.Errorf("a seeded key did not verify: %v", d)
			}
			return err
		}},
		{"issue_per_s", func(s *side, _ int) error {
			_, err := s.do("POST", s.path(fmt.Sprintf("keys/%s/r%07d", rateClient, s.issued.Add(1))), map[string]string{"role": "bench"})
			return err
		}},
	} {
		// A round is small, large, large, small (or the reverse), and its
		// ratio compares the sums, as in the in-process report: a drift
		// over the round weighs on both sides.
		var rs, rl, ratios []float64
		for r := 0; r < *flagRounds; r++ {
			order := []*side{sides[0], sides[1], sides[1], sides[0]}
			if r%2 == 1 {
				order = []*side{sides[1], sides[0], sides[0], sides[1]}
			}
			sum := map[*side]float64{}
			for _, s := range order {
				rate, err := benchkit.Rate(*flagConcurrency, *flagRateRound, func(i int) error { return q.call(s, i) })
				if err != nil {
					return fmt.Errorf("%s on %s: %w", q.name, s.label, err)
				}
				sum[s] += rate / 2
			}
			rs, rl = append(rs, sum[sides[0]]), append(rl, sum[sides[1]])
			ratios = append(ratios, sum[sides[1]]/sum[sides[0]])
		}
		fmt.Printf("%s_%s=%.2f %s_%s=%.2f %s_ratio=%.2f rounds %.2f-%.2f\n", q.name, sides[0].label, benchkit.Median(rs),
			q.name, sides[1].label, benchkit.Median(rl), q.name, benchkit.Median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	return nil
}

// rateClient is the client issue_per_s issues into on both mounts: its
// keys are the same in number on both, so only the mounts' sizes differ.
const rateClient = "cthroughput"

func printCost(name string, small, large *side, s, l float64) {
	fmt.Printf("%s_%s=%.2f %s_%s=%.2f %s_ratio=%.2f\n", name, small.label, s, name, large.label, l, name, l/s)
}

// seed creates a role and the clients, and issues the keys.
func (s *side) seed() error {
	if _, err := s.do("POST", s.path("roles/bench"), map[string]interface{}{"scopes": "orders:read", "environment": "prod"}); err != nil {
		return err
	}
	clients := (s.keys + *flagPerClient - 1) / *flagPerClient
	for c := 0; c < clients; c++ {
		if _, err := s.do("POST", s.path(clientPath(c)), map[string]interface{}{"owner": "team-bench", "type": "internal"}); err != nil {
			return err
		}
	}
	fmt.Printf("seeding %d keys on the %s server (%d clients)...\n", s.keys, s.label, clients)
	start := time.Now()
	is := benchkit.Issuer{
		Do: s.do,
		Path: func(i int) string {
			return s.path(fmt.Sprintf("keys/c%04d/k%07d", i / *flagPerClient, i))
		},
		Body:    map[string]interface{}{"role": "bench"},
		Workers: *flagConcurrency,
	}
	sample, err := is.Issue(s.keys, 100)
	if err != nil {
		return err
	}
	s.sample = sample
	fmt.Printf("seeded the %s server in %s (%.0f keys/s)\n", s.label, time.Since(start).Round(time.Second), float64(s.keys)/time.Since(start).Seconds())
	return nil
}

// catchUp waits until the log tree has reached the log's head, signing a
// first checkpoint if the periodic function has not yet.
func (s *side) catchUp(ctx context.Context) error {
	begin := time.Now()
	for {
		d, err := s.do("GET", s.path("log/checkpoint"), nil)
		if err != nil && strings.Contains(err.Error(), "no checkpoint") {
			_, err = s.do("POST", s.path("log/checkpoint"), nil)
		} else if err == nil {
			if pending, ok := d["pending"].(float64); ok && pending == 0 {
				fmt.Printf("%s: the log tree caught up with seeding in %s\n", s.label, time.Since(begin).Round(time.Second))
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("%s: log checkpoint: %w", s.label, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: the log tree did not catch up with seeding: %w", s.label, ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
}

func clientPath(c int) string { return fmt.Sprintf("clients/c%04d", c) }

// round sends -requests GETs one after another and returns their median
// latency in milliseconds.
func (s *side) round(ctx context.Context, path string) (float64, error) {
	return benchkit.MedianMillis(ctx, *flagRequests, func() error {
		_, err := s.do("GET", path, nil)
		return err
	})
}

func pluginPID(srv *vaulttest.Server) (int, error) {
	pids, err := srv.PluginPIDs()
	if err != nil {
		return 0, err
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("%d plugin processes under %s, want 1", len(pids), srv.PluginDir)
	}
	return pids[0], nil
}

// rssMiB reads VmRSS of a process.
func rssMiB(pid int) (float64, error) {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("VmRSS not found for pid %d", pid)
}
