// Command bench-webhooks measures what webhook delivery costs and how fast
// it catches up, in a real Vault with the plugin (make bench-webhooks).
//
// Three measurements from one run:
//
//	verify_webhooks_ratio   verify throughput (GET apikeys/verify, concurrent
//	                        keep-alive clients, as make bench) with -endpoints
//	                        endpoints subscribed to "*" at local receivers,
//	                        over the same without endpoints. A background
//	                        stream issues and revokes keys at -event-rate
//	                        events/s throughout, so deliveries happen while
//	                        verify is loaded. The two sides alternate round by
//	                        round (the order flips each round); the ratio is
//	                        the median of the per-round ratios.
//	webhook_drain_per_s     -burst events written (client updates, one log
//	                        entry each) while the receiver answers 503, then
//	                        the receiver comes back: distinct events received
//	                        per second from that moment until the last one.
//	                        The engine only learns the receiver is back when
//	                        its next backed-off probe succeeds, so the wait for
//	                        that probe is printed too (webhook_probe_wait_s),
//	                        and the rate after it (webhook_drain_after_probe_per_s).
//	webhook_state_bytes     the size of the down endpoint's state record
//	                        (read through sys/raw) with the whole burst
//	                        waiting: it stays bounded whatever the backlog.
//
// Receivers are internal/webhookrx: every delivery is verified with the
// Standard Webhooks reference library and de-duplicated on webhook-id.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/webhookrx"
)

var (
	flagDuration    = flag.Duration("duration", 2500*time.Millisecond, "verify load per side per round")
	flagRounds      = flag.Int("rounds", 8, "rounds; each runs both sides once")
	flagConcurrency = flag.Int("concurrency", 8, "concurrent HTTP clients")
	flagVerifyKeys  = flag.Int("verify-keys", 200, "valid keys the verify load rotates through")
	flagEndpoints   = flag.Int("endpoints", 3, "endpoints subscribed to every event on the measured side")
	flagEventRate   = flag.Float64("event-rate", 20, "background events per second (key issued, then revoked), on both sides")
	flagSlice       = flag.Duration("slice", 500*time.Millisecond, "the sides take turns in slices this long within a round")
	flagWarmup      = flag.Duration("warmup", time.Second, "warm-up verify load per side")
	flagBurst       = flag.Int("burst", 10000, "events written while the drain receiver is down (0 skips the drain)")
	flagDrainWait   = flag.Duration("drain-timeout", 3*time.Minute, "give up waiting for the drain after this long")
)

const (
	drainMount    = "apikeys-drain"
	drainEndpoint = "drain"
	burstClients  = 100
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-webhooks:", err)
		os.Exit(1)
	}
}

type bench struct {
	srv  *vaulttest.Server
	http *http.Client
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
	defer srv.Stop()
	b := &bench{srv: srv, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        4 * *flagConcurrency,
			MaxIdleConnsPerHost: 4 * *flagConcurrency,
			IdleConnTimeout:     time.Minute,
		},
	}}
	if b.pluginPID, err = benchkit.FindPID(func(cmdline string) bool {
		return strings.HasPrefix(cmdline, filepath.Join(srv.PluginDir, vaulttest.PluginBinary)+"\x00")
	}); err != nil {
		return fmt.Errorf("plugin process: %w", err)
	}
	if b.vaultPID, err = benchkit.FindPID(func(cmdline string) bool {
		return strings.Contains(cmdline, "-config="+filepath.Join(srv.Dir, "config.hcl"))
	}); err != nil {
		return fmt.Errorf("vault process: %w", err)
	}
	if err := b.verifyWithWebhooks(srv.Mount); err != nil {
		return err
	}
	if *flagBurst > 0 {
		return b.drain(ctx)
	}
	return nil
}

// do sends one JSON request and returns the decoded "data".
func (b *bench) do(method, path string, body interface{}) (map[string]interface{}, error) {
	return benchkit.Do(b.http, b.srv.Addr, b.srv.Token, method, "/v1/"+path, body)
}

// allowLocal lets mount deliver to receivers on http://127.0.0.1.
func (b *bench) allowLocal(mount string) error {
	_, err := b.do("POST", mount+"/notifications/config", map[string]interface{}{"allow_http": true, "allow_loopback": true})
	return err
}

// addEndpoint creates endpoint name at mount for rx, sending event types,
// and teaches rx its secret before enabling it, so no delivery is signed
// with a secret the receiver does not know yet. A new endpoint starts at
// the log's head.
func (b *bench) addEndpoint(mount, name string, rx *webhookrx.Receiver, types string) error {
	data, err := b.do("POST", mount+"/notifications/endpoints/"+name, map[string]interface{}{"url": rx.URL, "event_types": types, "enabled": false})
	if err != nil {
		return err
	}
	secret, _ := data["secret"].(string)
	if secret == "" {
		return fmt.Errorf("endpoint %s: no secret in the response", name)
	}
	if err := rx.SetSecrets(secret); err != nil {
		return err
	}
	_, err = b.do("POST", mount+"/notifications/endpoints/"+name, map[string]interface{}{"enabled": true})
	return err
}

func (b *bench) setupClientRole(mount string) error {
	if _, err := b.do("POST", mount+"/clients/bench", map[string]interface{}{"owner": "bench", "type": "internal"}); err != nil {
		return err
	}
	_, err := b.do("POST", mount+"/roles/bench", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "retrievable": false})
	return err
}

func (b *bench) issue(mount, name string) (string, error) {
	data, err := b.do("POST", mount+"/keys/bench/"+name, map[string]interface{}{"role": "bench"})
	if err != nil {
		return "", err
	}
	k, _ := data["key"].(string)
	if k == "" {
		return "", fmt.Errorf("issue response without key")
	}
	return k, nil
}

// stream issues and revokes keys at rate events/s until stop is closed,
// and returns how many events it wrote.
func (b *bench) stream(mount string, rate float64, stop <-chan struct{}, errc chan<- error) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				errc <- nil
				return
			case <-t.C:
			}
			name := fmt.Sprintf("s-%d", i/2)
			var err error
			if i%2 == 0 {
				_, err = b.issue(mount, name)
			} else {
				_, err = b.do("POST", mount+"/keys/bench/"+name+"/revoke", map[string]interface{}{"reason": "bench"})
			}
			if err != nil {
				errc <- fmt.Errorf("background stream: %w", err)
				return
			}
			n.Add(1)
		}
	}()
	return &n
}

// side accumulates the slices of one side.
type side struct {
	verifies  int64
	elapsed   time.Duration
	delivered int
	// CPU time of the Vault server, the plugin and this process (load
	// generator and receivers).
	vaultCPU, pluginCPU, selfCPU time.Duration
}

func (s *side) add(o side) {
	s.verifies += o.verifies
	s.elapsed += o.elapsed
	s.delivered += o.delivered
	s.vaultCPU += o.vaultCPU
	s.pluginCPU += o.pluginCPU
	s.selfCPU += o.selfCPU
}

func (s side) rps() float64 { return float64(s.verifies) / s.elapsed.Seconds() }

func (s side) perVerify(cpu time.Duration) float64 {
	if s.verifies == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(s.verifies)
}

// slice runs the verify load for d and accounts its CPU.
func (b *bench) slice(mount string, keys []string, d time.Duration) (side, error) {
	v0, p0, s0 := benchkit.CPUTime(b.vaultPID), benchkit.CPUTime(b.pluginPID), benchkit.CPUTime(os.Getpid())
	t0 := time.Now()
	n, err := b.load(mount, keys, d)
	out := side{verifies: n, elapsed: time.Since(t0)}
	out.vaultCPU = benchkit.CPUTime(b.vaultPID) - v0
	out.pluginCPU = benchkit.CPUTime(b.pluginPID) - p0
	out.selfCPU = benchkit.CPUTime(os.Getpid()) - s0
	return out, err
}

// load runs GET verify from the concurrent clients for d and returns
// how many succeeded.
func (b *bench) load(mount string, keys []string, d time.Duration) (int64, error) {
	var (
		wg      sync.WaitGroup
		done    atomic.Int64
		bad     atomic.Int64
		counter atomic.Int64
	)
	active := []byte(`"active":true`)
	deadline := time.Now().Add(d)
	for w := 0; w < *flagConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body bytes.Buffer
			for time.Now().Before(deadline) {
				i := counter.Add(1)
				req, _ := http.NewRequest("GET", b.srv.Addr+"/v1/"+mount+"/verify", nil)
				req.Header.Set("X-Vault-Token", b.srv.Token)
				req.Header.Set("X-Api-Key", keys[int(i)%len(keys)])
				resp, err := b.http.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				body.Reset()
				_, _ = body.ReadFrom(resp.Body)
				resp.Body.Close()
				// Checking every 16th body keeps the generator light.
				if resp.StatusCode != 200 || (i%16 == 0 && !bytes.Contains(body.Bytes(), active)) {
					bad.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		return 0, fmt.Errorf("%d verify requests failed", n)
	}
	return done.Load(), nil
}

// verifyWithWebhooks measures verify with and without endpoints, the
// background stream running on both sides.
func (b *bench) verifyWithWebhooks(mount string) error {
	if err := b.allowLocal(mount); err != nil {
		return err
	}
	if err := b.setupClientRole(mount); err != nil {
		return err
	}
	fmt.Printf("issuing %d keys for the verify load...\n", *flagVerifyKeys)
	keys := make([]string, 0, *flagVerifyKeys)
	for i := 0; i < *flagVerifyKeys; i++ {
		k, err := b.issue(mount, fmt.Sprintf("v-%d", i))
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	rxs := make([]*webhookrx.Receiver, *flagEndpoints)
	for i := range rxs {
		rx, err := webhookrx.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer rx.Close()
		rxs[i] = rx
	}
	// The measured side has the endpoints; the other has none (deleted,
	// not disabled: a disabled endpoint would catch up when enabled).
	on := func() error {
		for i, rx := range rxs {
			if err := b.addEndpoint(mount, fmt.Sprintf("bench-%d", i), rx, "*"); err != nil {
				return err
			}
		}
		return nil
	}
	off := func() error {
		for i := range rxs {
			if _, err := b.do("DELETE", fmt.Sprintf("%s/notifications/endpoints/bench-%d", mount, i), nil); err != nil {
				return err
			}
		}
		return nil
	}
	received := func() int {
		n := 0
		for _, rx := range rxs {
			n += len(rx.Events())
		}
		return n
	}

	stop := make(chan struct{})
	errc := make(chan error, 1)
	written := b.stream(mount, *flagEventRate, stop, errc)
	streamStart := time.Now()
	stopStream := func() error {
		select {
		case err := <-errc: // it failed already
			return err
		default:
		}
		close(stop)
		return <-errc
	}

	fmt.Printf("warm-up: %s per side\n", *flagWarmup)
	if err := on(); err != nil {
		return err
	}
	if _, err := b.load(mount, keys, *flagWarmup); err != nil {
		return err
	}
	if err := off(); err != nil {
		return err
	}
	if _, err := b.load(mount, keys, *flagWarmup); err != nil {
		return err
	}

	slices := int((*flagDuration + *flagSlice - 1) / *flagSlice)
	if slices < 1 {
		slices = 1
	}
	per := *flagDuration / time.Duration(slices)
	fmt.Printf("measuring: %d rounds x %s per side (%d alternating slices of %s), %d concurrent clients, %.0f background events/s, %d endpoints on the webhooks side\n",
		*flagRounds, *flagDuration, slices, per, *flagConcurrency, *flagEventRate, *flagEndpoints)
	// The two sides take turns slice by slice (the first side alternates),
	// so a burst of load from elsewhere on the machine hits both alike.
	var with, without, ratios []float64
	var sides [2]side // 0: with endpoints, 1: without
	for r := 0; r < *flagRounds; r++ {
		var round [2]side
		for sl := 0; sl < 2*slices; sl++ {
			k := (r + sl) % 2
			if k == 0 {
				if err := on(); err != nil {
					return err
				}
			}
			before := received()
			got, err := b.slice(mount, keys, per)
			if err != nil {
				return err
			}
			got.delivered = received() - before
			if k == 0 {
				if err := off(); err != nil {
					return err
				}
			}
			round[k].add(got)
		}
		w, wo := round[0].rps(), round[1].rps()
		with, without, ratios = append(with, w), append(without, wo), append(ratios, w/wo)
		sides[0].add(round[0])
		sides[1].add(round[1])
		fmt.Printf("  round %d: verify_webhooks=%.0f/s verify=%.0f/s ratio=%.3f\n", r+1, w, wo, w/wo)
	}
	if err := stopStream(); err != nil {
		return err
	}
	events := float64(written.Load()) / time.Since(streamStart).Seconds()
	rejected := 0
	for _, rx := range rxs {
		_, rj := rx.Counts()
		rejected += rj
	}
	if rejected > 0 {
		return fmt.Errorf("receivers rejected %d deliveries", rejected)
	}
	fmt.Println()
	fmt.Printf("verify_webhooks_rps=%.0f\n", median(with))
	fmt.Printf("verify_no_webhooks_rps=%.0f\n", median(without))
	fmt.Printf("background_events_per_s=%.1f\n", events)
	fmt.Printf("webhook_deliveries_during_load_per_s=%.1f\n", float64(sides[0].delivered)/sides[0].elapsed.Seconds())
	// CPU per verify of each process on each side: the background stream
	// is the same on both, so the difference is the cost of delivery.
	for k, name := range []string{"webhooks", "no_webhooks"} {
		sd := sides[k]
		fmt.Printf("%s_vault_cpu_per_verify_us=%.0f %s_plugin_cpu_per_verify_us=%.0f %s_bench_cpu_per_verify_us=%.0f\n",
			name, sd.perVerify(sd.vaultCPU), name, sd.perVerify(sd.pluginCPU), name, sd.perVerify(sd.selfCPU))
	}
	fmt.Printf("verify_webhooks_ratio=%.3f\n", median(ratios))
	return nil
}

// drain writes a burst of events while the receiver is down, reads the
// endpoint's state size, then brings the receiver back and times the
// catch-up.
func (b *bench) drain(ctx context.Context) error {
	fmt.Printf("\ndrain: mounting %s/, %d events while the receiver is down\n", drainMount, *flagBurst)
	if err := b.srv.MountAt(ctx, drainMount); err != nil {
		return err
	}
	if err := b.allowLocal(drainMount); err != nil {
		return err
	}
	rx, err := webhookrx.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer rx.Close()
	rx.SetDown(true)
	var (
		got         atomic.Int64
		first, last atomic.Int64 // unix nanoseconds
	)
	want := int64(*flagBurst)
	allIn := make(chan struct{})
	rx.OnEvent(func(e *webhookrx.Event, isNew bool) {
		if !isNew || e.Type != "client.written" {
			return
		}
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if got.Add(1) == want {
			last.Store(now)
			close(allIn)
		}
	})
	// Only the burst's own events: the endpoint's own endpoint.written
	// entry is after its cursor too.
	if err := b.addEndpoint(drainMount, drainEndpoint, rx, "client.written"); err != nil {
		return err
	}

	start := time.Now()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		werr  error
	)
	for w := 0; w < *flagConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= want {
					return
				}
				if _, err := b.do("POST", fmt.Sprintf("%s/clients/c-%03d", drainMount, i%burstClients), map[string]interface{}{"owner": "bench", "type": "internal"}); err != nil {
					errMu.Lock()
					werr = err
					errMu.Unlock()
					next.Store(want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	burst := time.Since(start)
	fmt.Printf("wrote %d events in %s\n", want, burst.Round(time.Millisecond))

	st, err := b.deliveries()
	if err != nil {
		return err
	}
	size, err := b.stateBytes(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("down: cursor=%v backlog=%v pending=%d failures=%v\n", st["cursor"], st["backlog"], lenOf(st["pending"]), st["failures"])

	rx.SetDown(false)
	up := time.Now()
	select {
	case <-allIn:
	case <-time.After(*flagDrainWait):
		return fmt.Errorf("drain: %d of %d events after %s", got.Load(), want, *flagDrainWait)
	}
	total := time.Duration(last.Load() - up.UnixNano())
	probe := time.Duration(first.Load() - up.UnixNano())
	after := time.Duration(last.Load() - first.Load())
	st, err = b.deliveries()
	if err != nil {
		return err
	}
	sizeAfter, err := b.stateBytes(ctx)
	if err != nil {
		return err
	}
	hits, rejected := rx.Counts()
	fmt.Printf("drained %d events in %s (probe wait %s), receiver hits %d (rejected %d), recent latency p50 %.2fms max %.2fms\n",
		want, total.Round(time.Millisecond), probe.Round(time.Millisecond), hits, rejected, latencyQuantile(st, 0.5), latencyQuantile(st, 1))
	fmt.Println()
	fmt.Printf("webhook_burst_events=%d\n", want)
	fmt.Printf("webhook_burst_write_per_s=%.0f\n", float64(want)/burst.Seconds())
	fmt.Printf("webhook_state_bytes=%d\n", size)
	fmt.Printf("webhook_state_bytes_after_drain=%d\n", sizeAfter)
	fmt.Printf("webhook_probe_wait_s=%.1f\n", probe.Seconds())
	fmt.Printf("webhook_drain_s=%.1f\n", total.Seconds())
	fmt.Printf("webhook_drain_after_probe_per_s=%.0f\n", float64(want-1)/after.Seconds())
	fmt.Printf("webhook_drain_per_s=%.0f\n", float64(want)/total.Seconds())
	return nil
}

// deliveries returns the drain endpoint's entry of notifications/deliveries.
func (b *bench) deliveries() (map[string]interface{}, error) {
	data, err := b.do("GET", drainMount+"/notifications/deliveries?endpoint="+drainEndpoint, nil)
	if err != nil {
		return nil, err
	}
	eps, _ := data["endpoints"].(map[string]interface{})
	st, _ := eps[drainEndpoint].(map[string]interface{})
	if st == nil {
		return nil, fmt.Errorf("no deliveries entry for endpoint %s: %v", drainEndpoint, data)
	}
	return st, nil
}

// stateBytes is the size of the drain endpoint's stored state record.
func (b *bench) stateBytes(ctx context.Context) (int, error) {
	uuid, err := b.srv.MountUUID(ctx, drainMount)
	if err != nil {
		return 0, err
	}
	data, err := b.do("GET", "sys/raw/logical/"+uuid+"/notifications/state/"+drainEndpoint, nil)
	if err != nil {
		return 0, err
	}
	v, _ := data["value"].(string)
	if v == "" {
		return 0, fmt.Errorf("sys/raw: no state record for endpoint %s", drainEndpoint)
	}
	return len(v), nil
}

func lenOf(v interface{}) int {
	l, _ := v.([]interface{})
	return len(l)
}

// latencyQuantile is the q-quantile of latency_ms over the recent attempts.
func latencyQuantile(st map[string]interface{}, q float64) float64 {
	var ls []float64
	recent, _ := st["recent"].([]interface{})
	for _, a := range recent {
		if m, ok := a.(map[string]interface{}); ok {
			if l, ok := m["latency_ms"].(float64); ok {
				ls = append(ls, l)
			}
		}
	}
	if len(ls) == 0 {
		return 0
	}
	sort.Float64s(ls)
	return ls[int(q*float64(len(ls)-1))]
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
