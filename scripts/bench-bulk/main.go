// Command bench-bulk measures a bulk revoke in a real Vault with the
// plugin (make bench-bulk):
//
//	bulk_keys                 keys of the selector (client "victim"), seeded
//	                          through the API with benchkit.Issuer
//	bulk_revoke_keys_per_s    keys revoked per second of the operation's
//	                          running time, the restart gap after the kill
//	                          excluded (and bulk_revoke_wall_keys_per_s with it)
//	verify_during_ratio       verify throughput of keys outside the selector
//	                          (client "bystander", concurrent keep-alive
//	                          POST apikeys/verify) while the revoke runs, over
//	                          the same without it: medians of -rounds rounds
//	                          of each side (the "without" rounds run before
//	                          the operation and after it ended)
//	kill_at_done / resumed    the plugin process is killed with SIGKILL once
//	                          -kill-at of the keys are done; the operation
//	                          resumes after Vault restarts the plugin and
//	                          completes
//	checked_keys / verified   every seeded key of the selector (or every
//	                          -check-every-th) verified after the operation
//	                          reported done: verified must be 0
//
// The server is a dev server (in-memory storage) by default, to keep the
// seeding time bounded; -raft runs it on integrated storage.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var (
	flagKeys        = flag.Int("keys", 100000, "keys of the selector")
	flagBystanders  = flag.Int("bystanders", 200, "keys outside the selector, the verify load")
	flagConcurrency = flag.Int("concurrency", 8, "concurrent HTTP clients (seeding and verify load)")
	flagRounds      = flag.Int("rounds", 5, "verify rounds per side")
	flagRound       = flag.Duration("round", 2*time.Second, "verify load per round")
	flagKillAt      = flag.Float64("kill-at", 0.4, "kill the plugin once this share of the keys is done (0: no kill)")
	flagCheckEvery  = flag.Int("check-every", 1, "verify every n-th key of the selector after done (1: all)")
	flagRaft        = flag.Bool("raft", false, "run Vault on integrated storage (Raft)")
	flagTimeout     = flag.Duration("timeout", 60*time.Minute, "give up after this long")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-bulk:", err)
		os.Exit(1)
	}
}

type bench struct {
	srv   *vaulttest.Server
	http  *http.Client
	mount string
}

func (b *bench) do(method, path string, body interface{}) (map[string]interface{}, error) {
	return benchkit.Do(b.http, b.srv.Addr, b.srv.Token, method, path, body)
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	fmt.Println("starting vault with the plugin...")
	srv, err := vaulttest.Start(ctx, vaulttest.Options{NoAudit: true, LogLevel: "warn", Raft: *flagRaft})
	if err != nil {
		return err
	}
	defer srv.Stop()
	b := &bench{srv: srv, mount: srv.Mount, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 4 * *flagConcurrency, MaxIdleConnsPerHost: 4 * *flagConcurrency, IdleConnTimeout: time.Minute},
	}}
	for _, c := range []string{"victim", "bystander"} {
		if _, err := b.do("POST", "/v1/"+b.mount+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": "internal"}); err != nil {
			return err
		}
	}
	if _, err := b.do("POST", "/v1/"+b.mount+"/roles/bench", map[string]interface{}{"scopes": "orders:read", "environment": "prod"}); err != nil {
		return err
	}
	fmt.Printf("seeding %d keys of the selector and %d outside it...\n", *flagKeys, *flagBystanders)
	seedStart := time.Now()
	victims, err := b.issuer("victim").Issue(*flagKeys, *flagKeys/max(*flagCheckEvery, 1))
	if err != nil {
		return err
	}
	bystanders, err := b.issuer("bystander").Issue(*flagBystanders, *flagBystanders)
	if err != nil {
		return err
	}
	fmt.Printf("seeded in %s\n", time.Since(seedStart).Round(time.Second))

	var without, during []float64
	for i := 0; i < (*flagRounds+1)/2; i++ {
		r, err := b.verifyRound(bystanders)
		if err != nil {
			return err
		}
		without = append(without, r)
	}

	op, err := b.do("POST", "/v1/"+b.mount+"/operations", map[string]interface{}{"action": "revoke", "client": "victim", "reason": "bench-bulk"})
	if err != nil {
		return err
	}
	id := op["id"].(string)
	started := time.Now()
	var gap time.Duration
	killedAt := int64(-1)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st, err := b.do("GET", "/v1/"+b.mount+"/operations/"+id, nil)
		if err != nil {
			return err
		}
		done := num(st["done"])
		if st["state"] != "running" {
			if st["state"] != "completed" || done != int64(*flagKeys) {
				return fmt.Errorf("operation ended %v with done %d of %d: %v", st["state"], done, *flagKeys, st)
			}
			break
		}
		if len(during) < *flagRounds && (killedAt >= 0 || *flagKillAt == 0 || float64(done) < *flagKillAt*float64(*flagKeys)) {
			r, err := b.verifyRound(bystanders)
			if err != nil {
				return err
			}
			if b.running(id) {
				during = append(during, r) // a round the operation ran through
			}
			continue
		}
		if killedAt < 0 && *flagKillAt > 0 && float64(done) >= *flagKillAt*float64(*flagKeys) {
			pids, err := srv.KillPlugin()
			if err != nil {
				return err
			}
			killedAt = done
			fmt.Printf("killed plugin %v at done=%d\n", pids, done)
			k := time.Now()
			for { // Vault starts the plugin again on the next request
				if _, err := b.do("GET", "/v1/"+b.mount+"/operations/"+id, nil); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond) // the plugin restarting
			}
			gap = time.Since(k)
			continue
		}
		time.Sleep(200 * time.Millisecond) // polling progress
	}
	elapsed := time.Since(started)
	for len(without) < *flagRounds {
		r, err := b.verifyRound(bystanders)
		if err != nil {
			return err
		}
		without = append(without, r)
	}

	fmt.Println("verifying the selector's keys after done...")
	codes, err := b.verifyAll(victims)
	if err != nil {
		return err
	}
	byCodes, err := b.verifyAll(bystanders)
	if err != nil {
		return err
	}
	fmt.Printf("bulk_keys %d\n", *flagKeys)
	fmt.Printf("bulk_revoke_keys_per_s %.0f\n", float64(*flagKeys)/(elapsed-gap).Seconds())
	fmt.Printf("bulk_revoke_wall_keys_per_s %.0f\n", float64(*flagKeys)/elapsed.Seconds())
	fmt.Printf("verify_without_median_per_s %.0f (rounds %d)\n", benchkit.Median(without), len(without))
	fmt.Printf("verify_during_median_per_s %.0f (rounds %d)\n", benchkit.Median(during), len(during))
	if len(during) > 0 {
		fmt.Printf("verify_during_ratio %.2f\n", benchkit.Median(during)/benchkit.Median(without))
	}
	if killedAt >= 0 {
		fmt.Printf("kill_at_done %d restart_gap_s %.1f resumed completed\n", killedAt, gap.Seconds())
	}
	fmt.Printf("checked_keys %d (every %d-th) verified %d codes %v\n", len(victims), *flagCheckEvery, codes["active"], codes)
	fmt.Printf("bystanders_active %d of %d\n", byCodes["active"], len(bystanders))
	if codes["active"] != 0 || byCodes["active"] != len(bystanders) {
		return fmt.Errorf("wrong verify answers after done")
	}
	return nil
}

func (b *bench) issuer(client string) benchkit.Issuer {
	return benchkit.Issuer{
		Do:      b.do,
		Path:    func(i int) string { return fmt.Sprintf("/v1/%s/keys/%s/k%07d", b.mount, client, i) },
		Body:    map[string]interface{}{"role": "bench"},
		Workers: *flagConcurrency,
	}
}

func (b *bench) running(id string) bool {
	st, err := b.do("GET", "/v1/"+b.mount+"/operations/"+id, nil)
	return err == nil && st["state"] == "running"
}

// verifyRound runs the verify load for one round and returns verifies/s.
func (b *bench) verifyRound(keys []string) (float64, error) {
	return benchkit.Rate(*flagConcurrency, *flagRound, func(i int) error {
		d, err := b.do("POST", "/v1/"+b.mount+"/verify", map[string]interface{}{"key": keys[i%len(keys)]})
		if err == nil && d["active"] != true {
			err = fmt.Errorf("a bystander key did not verify: %v", d)
		}
		return err
	})
}

// verifyAll verifies every key once and counts the answers.
func (b *bench) verifyAll(keys []string) (map[string]int, error) {
	var mu sync.Mutex
	out := map[string]int{}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < *flagConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				d, err := b.do("POST", "/v1/"+b.mount+"/verify", map[string]interface{}{"key": keys[i]})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				code, _ := d["code"].(string)
				if d["active"] == true {
					code = "active"
				}
				mu.Lock()
				out[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

func num(v interface{}) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case int64:
		return x
	}
	return 0
}
