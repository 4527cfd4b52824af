// Command bench-inventory measures whether the cost of one page grows with
// the mount (make bench-inventory). One Vault serves two mounts of the
// plugin, a small one (-small keys) and a large one (-keys keys), both with
// 1,000 keys per client, seeded through the API with benchkit.Issuer. Each
// query below is then timed on both mounts, interleaved, for -rounds
// rounds of -requests sequential requests each; a round's figure is its
// median latency, the reported figure the median of the rounds, and the
// ratio large/small is what the bar (≤ 1.5) judges:
//
//	inventory_first     GET inventory?limit=100 (with the tombstone page)
//	inventory_middle    GET inventory?limit=100&after=<a key midway>
//	inventory_client    GET inventory?client=<a client midway>&limit=100
//	inventory_key_id    GET inventory?key_id=<a key midway>
//	inventory_filtered  GET inventory?role=rare&limit=100 (matches nothing:
//	                    a page reads its whole scan budget)
//	keys_list           LIST keys/<a client midway>?limit=100
//	log_newest          GET log?limit=100
//
// The server is a dev server (in-memory storage) by default; -raft runs it
// on integrated storage, whose listings read every entry under a prefix.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var (
	flagKeys        = flag.Int("keys", 100000, "keys of the large mount")
	flagSmall       = flag.Int("small", 10000, "keys of the small mount")
	flagPerClient   = flag.Int("per-client", 1000, "keys per client")
	flagConcurrency = flag.Int("concurrency", 8, "concurrent HTTP clients while seeding")
	flagRounds      = flag.Int("rounds", 7, "rounds per query and mount")
	flagRequests    = flag.Int("requests", 20, "sequential requests per round")
	flagRaft        = flag.Bool("raft", false, "run Vault on integrated storage (Raft)")
	flagBar         = flag.Float64("bar", 1.5, "largest acceptable large/small latency ratio")
	flagTimeout     = flag.Duration("timeout", 90*time.Minute, "give up after this long")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-inventory:", err)
		os.Exit(1)
	}
}

type bench struct {
	srv  *vaulttest.Server
	http *http.Client
}

func (b *bench) do(method, path string, body interface{}) (map[string]interface{}, error) {
	return benchkit.Do(b.http, b.srv.Addr, b.srv.Token, method, path, body)
}

// mount is one seeded mount and the points its queries start from.
type mount struct {
	path   string
	keys   int
	middle string // "<client>/<name>" of a key midway
	client string // a client midway
	keyID  string // the key id of a key midway
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
	b := &bench{srv: srv, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 4 * *flagConcurrency, MaxIdleConnsPerHost: 4 * *flagConcurrency, IdleConnTimeout: time.Minute},
	}}
	small := &mount{path: srv.Mount, keys: *flagSmall}
	large := &mount{path: "inv-large", keys: *flagKeys}
	if err := srv.MountAt(ctx, large.path); err != nil {
		return err
	}
	for _, m := range []*mount{small, large} {
		if err := b.seed(ctx, m); err != nil {
			return err
		}
	}

	// Each query's answer is checked once per mount: field holds want
	// items, so a query that went wrong cannot pass for a fast one.
	queries := []struct {
		name  string
		path  func(m *mount) string
		field string
		want  int
	}{
		{"inventory_first", func(m *mount) string { return "inventory?limit=100" }, "keys", 100},
		{"inventory_middle", func(m *mount) string { return "inventory?limit=100&after=" + url.QueryEscape(m.middle) }, "keys", 100},
		{"inventory_client", func(m *mount) string { return "inventory?limit=100&client=" + m.client }, "keys", 100},
		{"inventory_key_id", func(m *mount) string { return "inventory?key_id=" + url.QueryEscape(m.keyID) }, "keys", 1},
		{"inventory_filtered", func(m *mount) string { return "inventory?limit=100&role=rare" }, "keys", 0},
		{"keys_list", func(m *mount) string { return "keys/" + m.client + "?list=true&limit=100" }, "keys", 100},
		{"log_newest", func(m *mount) string { return "log?limit=100" }, "entries", 100},
	}
	fmt.Printf("small_keys %d large_keys %d per_client %d rounds %d requests_per_round %d raft %v\n",
		small.keys, large.keys, *flagPerClient, *flagRounds, *flagRequests, *flagRaft)
	worst := 0.0
	for _, q := range queries {
		for _, m := range []*mount{small, large} {
			d, err := b.do("GET", "/v1/"+m.path+"/"+q.path(m), nil)
			if err != nil {
				return err
			}
			if items, _ := d[q.field].([]interface{}); len(items) != q.want {
				return fmt.Errorf("%s on %s: %d %s, want %d", q.name, m.path, len(items), q.field, q.want)
			}
		}
		var rs, rl []float64
		for r := 0; r < *flagRounds; r++ {
			// Alternate which mount goes first, so neither always meets a
			// warmer or colder machine.
			order := []*mount{small, large}
			if r%2 == 1 {
				order = []*mount{large, small}
			}
			for _, m := range order {
				lat, err := b.round(ctx, "/v1/"+m.path+"/"+q.path(m))
				if err != nil {
					return fmt.Errorf("%s on %s: %w", q.name, m.path, err)
				}
				if m == small {
					rs = append(rs, lat)
				} else {
					rl = append(rl, lat)
				}
			}
		}
		ratio := benchkit.Median(rl) / benchkit.Median(rs)
		worst = max(worst, ratio)
		fmt.Printf("%-20s small_ms %.2f large_ms %.2f ratio %.2f\n", q.name, benchkit.Median(rs), benchkit.Median(rl), ratio)
	}
	fmt.Printf("worst_ratio %.2f (bar %.2f)\n", worst, *flagBar)
	if worst > *flagBar {
		return fmt.Errorf("a page costs %.2fx on the large mount, over the bar %.2f", worst, *flagBar)
	}
	return nil
}

// seed creates the mount's clients, a role "bench" for every key and a
// role "rare" for none, issues the keys and notes the query points.
func (b *bench) seed(ctx context.Context, m *mount) error {
	for _, r := range []string{"bench", "rare"} {
		if _, err := b.do("POST", "/v1/"+m.path+"/roles/"+r, map[string]interface{}{"scopes": "orders:read", "environment": "prod"}); err != nil {
			return err
		}
	}
	clients := (m.keys + *flagPerClient - 1) / *flagPerClient
	for c := 0; c < clients; c++ {
		if _, err := b.do("POST", "/v1/"+m.path+"/clients/"+clientName(c), map[string]interface{}{"owner": "team-bench", "type": "internal"}); err != nil {
			return err
		}
	}
	fmt.Printf("seeding %d keys in %s (%d clients)...\n", m.keys, m.path, clients)
	start := time.Now()
	is := benchkit.Issuer{
		Do: b.do,
		Path: func(i int) string {
			return fmt.Sprintf("/v1/%s/keys/%s/k%07d", m.path, clientName(i / *flagPerClient), i)
		},
		Body:    map[string]interface{}{"role": "bench"},
		Workers: *flagConcurrency,
	}
	if _, err := is.Issue(m.keys, 1); err != nil {
		return err
	}
	fmt.Printf("seeded %s in %s\n", m.path, time.Since(start).Round(time.Second))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	mid := m.keys / 2
	m.client = clientName(mid / *flagPerClient)
	m.middle = fmt.Sprintf("%s/k%07d", m.client, mid)
	k, err := b.do("GET", "/v1/"+m.path+"/keys/"+m.middle, nil)
	if err != nil {
		return err
	}
	id, ok := k["key_id"].(string)
	if !ok {
		return fmt.Errorf("key %s read without key_id: %v", m.middle, k)
	}
	m.keyID = id
	return nil
}

func clientName(c int) string { return fmt.Sprintf("c%04d", c) }

// round sends -requests GETs one after another and returns their median
// latency in milliseconds.
func (b *bench) round(ctx context.Context, path string) (float64, error) {
	return benchkit.MedianMillis(ctx, *flagRequests, func() error {
		_, err := b.do("GET", path, nil)
		return err
	})
}
