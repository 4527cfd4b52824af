// Package fuzz is the API fuzzing gate: every operation Vault's OpenAPI
// document lists for the mount gets thousands of hostile requests (wrong
// types, empty, huge, unicode, control characters, NUL, path tricks, bad
// CIDRs, cron and durations, overflowing numbers) in a real Vault on Raft
// storage, and the plugin must answer each without a 5xx, without a panic
// or plugin process exit, and without leaving an object half-written by a
// request it refused.
package fuzz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

const (
	// minRequests is the least number of fuzzed requests a run must send.
	minRequests = 5000
	// plannedRequests is how many are planned, spread over the operations.
	plannedRequests = 5400
	// budget bounds the fuzzing itself; a run that cannot send
	// minRequests within it fails rather than overrunning CI. The run is
	// planned by count (about 2 minutes here); the budget leaves room for
	// a CI machine busy with other test packages.
	budget = 8 * time.Minute
	// workers send requests in parallel, each on its own operations and
	// its own objects, so their checks do not see each other's writes.
	workers = 4
)

// vaultCaused lists the 5xx answers whose cause is in Vault itself, not in
// the plugin, each with the reason. Every other 5xx fails the gate.
var vaultCaused = []struct {
	match  func(op operation, m mutation, a answer) bool
	reason string
}{
	{
		// Vault hands the request path and headers to the plugin over
		// gRPC, whose protobuf string fields must be valid UTF-8. A
		// percent-escape that decodes to invalid UTF-8 (%ff) in the path,
		// or such bytes in a passed-through header, fail in Vault's own
		// marshalling before the plugin is called: for reads with that
		// gRPC error, for writes as "internal error" from Vault's
		// existence check (logged as "failed to run existence check").
		match: func(_ operation, m mutation, a answer) bool {
			p, err := url.PathUnescape(m.path)
			return a.status == 500 && (err == nil && !utf8.ValidString(p) || !utf8.ValidString(m.header))
		},
		reason: "invalid UTF-8 in the path or a header fails Vault's gRPC marshalling to the plugin",
	},
	{
		// Vault reads a JSON body keeping numbers as text, and hands the
		// data to the plugin as JSON, which the SDK's gRPC server (Vault's
		// code, compiled into the plugin) decodes into float64 before any
		// plugin code runs: a number beyond float64's range (1e309)
		// fails there, as "internal error" from the existence check
		// ("json: cannot unmarshal number 1e309 into Go value of type
		// float64" in Vault's log).
		match: func(_ operation, m mutation, a answer) bool {
			for _, v := range m.body {
				if a.status == 500 && string(v) == "1e309" {
					return true
				}
			}
			return false
		},
		reason: "a JSON number beyond float64 fails the SDK's decoding of request data before the plugin is called",
	},
}

// seed returns the run's seed: FUZZ_SEED, else a fixed one, so a run is
// reproducible (with FUZZ_OP to fuzz only the operations whose
// "METHOD template" contains it).
func seed(t *testing.T) uint64 {
	if s := os.Getenv("FUZZ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FUZZ_SEED: %v", err)
		}
		return v
	}
	return 20261204
}

// failure is one problem found, for the report.
type failure struct {
	class  string // what kind of problem, for grouping
	detail string
}

// run is the state of a fuzzing run shared by the workers.
type run struct {
	t      *testing.T
	srv    *vaulttest.Server
	mount  string
	token  string // a token with an identity entity, as users have
	seed   uint64
	byOp   map[string]bool
	ops    []operation
	opByTS map[string]operation

	mu        sync.Mutex
	byClass   map[int]int // requests by status class (2 = 2xx ...)
	sent      int
	checks    int
	unsent    int
	failures  []failure
	seen      map[string]int
	fiveXX    map[string]string // class -> one reproduction
	vaultFive map[string]int
}

func TestAPIFuzz(t *testing.T) {
	start := time.Now()
	srv := vaulttest.StartRaftForTest(t)
	ctx := context.Background()
	r := &run{t: t, srv: srv, mount: srv.Mount, seed: seed(t), byClass: map[int]int{},
		seen: map[string]int{}, fiveXX: map[string]string{}, vaultFive: map[string]int{}, opByTS: map[string]operation{}}
	r.token = entityToken(t, srv)
	ops, err := loadOperations(ctx, srv.Client, srv.Mount)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		r.opByTS[op.String()] = op
	}
	filter := os.Getenv("FUZZ_OP")
	for _, op := range ops {
		if filter == "" || strings.Contains(op.String(), filter) {
			r.ops = append(r.ops, op)
		}
	}
	t.Logf("fuzzing %d operations from the OpenAPI document (seed %d)", len(r.ops), r.seed)

	pidsBefore := pluginPIDs(t, srv)
	if len(pidsBefore) != 1 {
		t.Fatalf("want one plugin process before fuzzing, have %v", pidsBefore)
	}
	configBefore := r.read("config")

	// Operations on the mount's configuration change what every worker
	// reads, so they run alone after the others.
	var parallel, serial []int
	for i, op := range r.ops {
		if op.Template == "config" {
			serial = append(serial, i)
		} else {
			parallel = append(parallel, i)
		}
	}
	per := (plannedRequests + len(r.ops) - 1) / len(r.ops)
	deadline := time.Now().Add(budget)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := w; j < len(parallel); j += workers {
				r.fuzzOp(parallel[j], per, deadline, false)
			}
		}(w)
	}
	wg.Wait()
	if after := r.read("config"); filter == "" && !configBefore.equal(after) {
		r.fail("half-written", "the configuration changed during the parallel phase, where nothing writes it: "+configBefore.diff(after))
	}
	for _, i := range serial {
		r.fuzzOp(i, per, deadline, true)
	}

	pidsAfter := pluginPIDs(t, srv)
	panics := vaulttest.PanicLines(t, srv.LogPath)
	elapsed := time.Since(start)
	r.summary(t, elapsed, pidsBefore, pidsAfter, panics)

	if fmt.Sprint(pidsBefore) != fmt.Sprint(pidsAfter) {
		t.Errorf("plugin process changed: %v before, %v after (a crash restarts it)", pidsBefore, pidsAfter)
	}
	if len(panics) > 0 {
		t.Errorf("%d panic lines in the server log, first: %s", len(panics), panics[0])
	}
	if filter == "" && r.sent < minRequests {
		t.Errorf("only %d requests sent within %v; the gate needs at least %d", r.sent, budget, minRequests)
	}
	for _, f := range r.failures {
		t.Errorf("%s: %s", f.class, f.detail)
	}
}

// fuzzOp sends n mutated requests for operation i, on fresh objects of
// its own, checking each answer.
func (r *run) fuzzOp(i, n int, deadline time.Time, withConfig bool) {
	op := r.ops[i]
	h := fnv.New64a()
	h.Write([]byte(op.String()))
	g := &generator{rng: rand.New(rand.NewPCG(r.seed, h.Sum64())), op: op}
	fx, err := r.fixture(i, op)
	if err != nil {
		r.fail("fixture", fmt.Sprintf("%s: setting up its objects: %v", op, err))
		return
	}
	g.params, g.base = fx.params, fx.base
	watched := fx.watched
	if withConfig {
		watched = append(watched, "config")
	}
	cache := map[string]snapshot{}
	for _, p := range watched {
		cache[p] = r.read(p)
	}
	getOp, hasGet := r.opByTS["GET "+op.Template]
	n = max(n, mandatoryRounds*len(op.Names)+30)
	for k := 0; k < n && time.Now().Before(deadline); k++ {
		m := g.next(k)
		write := op.Method == "POST" || op.Method == "DELETE"
		var target string
		var before snapshot
		// Objects addressed by name are read back; mount-wide views (the
		// log's head, the configuration) change with other workers' work.
		if write && hasGet && len(op.Params) > 0 {
			target = m.path
			before = r.read(target)
		}
		a, err := r.sendMutation(op, m)
		if err != nil {
			var u errUnsendable
			if errors.As(err, &u) {
				r.mu.Lock()
				r.unsent++
				r.mu.Unlock()
				continue
			}
			r.fail("transport", fmt.Sprintf("%s %s (%s): %v", op.Method, m.path, m.what, err))
			continue
		}
		r.record(op, m, a)
		if !write {
			continue
		}
		refused := a.status >= 400
		for _, p := range watched {
			now := r.read(p)
			if refused && !cache[p].equal(now) {
				r.fail("half-written", fmt.Sprintf("%s %s refused with %d (%s) but %s changed: %s [seed %d]", op.Method, m.path, a.status, m.what, p, cache[p].diff(now), r.seed))
			}
			cache[p] = now
		}
		if target != "" && refused {
			if after := r.read(target); !before.equal(after) {
				r.fail("half-written", fmt.Sprintf("%s %s refused with %d (%s) but %s changed: %s [seed %d]", op.Method, m.path, a.status, m.what, getOp.Template, before.diff(after), r.seed))
			}
		}
	}
}

func (r *run) sendMutation(op operation, m mutation) (answer, error) {
	var body []byte
	if op.Method == "POST" {
		body = []byte(m.raw)
		if m.raw == "" {
			var err error
			if body, err = json.Marshal(m.body); err != nil {
				return answer{}, err
			}
		}
	}
	var key *string
	if m.header != "" || (op.Template == "verify" && op.Method == "GET") {
		key = &m.header
	}
	return send(r.srv.Addr, r.token, op.Method, r.mount, m.path, m.query, body, key)
}

// read reads a mount path with the root token, for the checks.
func (r *run) read(p string) snapshot {
	a, err := send(r.srv.Addr, r.srv.Token, "GET", r.mount, p, nil, nil, nil)
	r.mu.Lock()
	r.checks++
	r.mu.Unlock()
	if err != nil {
		return snapshot{status: -1, data: err.Error()}
	}
	data := stable(a.data)
	if m, ok := data.(map[string]interface{}); ok && isKeyPath(p) {
		delete(m, "retrievable")
	}
	return snapshot{status: a.status, data: data}
}

// isKeyPath tells a key's own path (keys/<client>/<name>). The governance
// sweep turns such a key's retrievable off by itself, up to a pass after an
// accepted change of its role stopped retrieval (retrieval_drop.go): a
// request refused meanwhile did not write it, so a read leaves it out.
func isKeyPath(p string) bool {
	return strings.HasPrefix(p, "keys/") && strings.Count(p, "/") == 2
}

var digits = regexp.MustCompile(`[0-9a-f]{8,}|[0-9]+`)

// record counts an answer and keeps 5xx answers by class.
func (r *run) record(op operation, m mutation, a answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.byClass[a.status/100]++
	if a.status < 500 {
		return
	}
	for _, v := range vaultCaused {
		if v.match(op, m, a) {
			r.vaultFive[v.reason]++
			return
		}
	}
	msg := a.errorText()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	class := fmt.Sprintf("%d %s: %s", a.status, op, digits.ReplaceAllString(msg, "N"))
	if _, ok := r.fiveXX[class]; !ok {
		r.fiveXX[class] = fmt.Sprintf("%s /v1/%s/%s with %s", op.Method, r.mount, m.path, m.what)
	}
	r.seen[class]++
}

func (r *run) fail(class, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := class + detail
	if len(detail) > 120 {
		key = class + detail[:120]
	}
	if r.seen["fail:"+key] > 0 {
		return
	}
	r.seen["fail:"+key]++
	r.failures = append(r.failures, failure{class: class, detail: detail})
}

func (r *run) summary(t *testing.T, elapsed time.Duration, before, after []int, panics []string) {
	var classes []string
	for c := 1; c <= 5; c++ {
		classes = append(classes, fmt.Sprintf("%dxx=%d", c, r.byClass[c]))
	}
	fmt.Printf("fuzz summary: %d requests (%s) over %d operations, %d check reads, %d not sendable by the HTTP client, seed %d, %v; plugin pids %v -> %v; panic lines %d; 5xx classes %d; Vault-caused 5xx %v\n",
		r.sent, strings.Join(classes, " "), len(r.ops), r.checks, r.unsent, r.seed, elapsed.Round(time.Second), before, after, len(panics), len(r.fiveXX), r.vaultFive)
	var keys []string
	for k := range r.fiveXX {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.fail("5xx", fmt.Sprintf("%s (%d times), e.g. %s", k, r.seen[k], r.fiveXX[k]))
	}
}

// pluginPIDs lists the plugin processes of the server: one multiplexed
// process serves every mount, and it must be the same one at the end.
func pluginPIDs(t *testing.T, s *vaulttest.Server) []int {
	t.Helper()
	pids, err := vaulttest.ProcessesOf(filepath.Join(s.PluginDir, vaulttest.PluginBinary))
	if err != nil {
		t.Fatal(err)
	}
	sort.Ints(pids)
	return pids
}
