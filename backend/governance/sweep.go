package governance

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The background key sweep (idle revocation, review and overdue flags) is
// incremental: each governance tick visits at most a batch of keys in
// storage order (client, then key name), carrying on after the last key the
// previous tick visited, and starts a new pass after the last key of the
// mount once the pass is due (PassInterval). A tick's cost is therefore bounded whatever the number of keys,
// and a pass over n keys takes at least ceil(n/batch) ticks, more when the
// time budget cuts ticks short: a key that exists when
// a pass starts is visited in it; one created during a pass, in that pass
// or the next.

// A new pass starts no sooner than PassInterval after the previous one
// started. Back-to-back passes would make the sweep's cost per minute grow
// with the mount (a 100k-key mount swept every tick reads ten times the
// keys of a 10k-key one, idle or not); paced, a mount of more than
// DefaultSweepRate keys is swept at about that many keys a minute on
// average, until a pass would start less often than MaxPassInterval, the
// coverage the mount promises: every key visited at least once in 15
// minutes of ticks plus the pass's own length. A mount of up to
// DefaultSweepRate keys is swept every tick, as it costs at most that.
const (
	DefaultSweepRate = 12000
	MaxPassInterval  = 15 * time.Minute
)

// PassInterval is how long after the start of a pass over n keys the next
// pass may start, at a rate of keys a minute.
func PassInterval(n, rate int) time.Duration {
	if n <= rate {
		return 0
	}
	return min(time.Duration(n)*time.Minute/time.Duration(rate), MaxPassInterval)
}

func (r *Runtime) sweepRate() int {
	if r.opts.SweepRate > 0 {
		return r.opts.SweepRate
	}
	return DefaultSweepRate
}

// DefaultSweepBatch is the most keys one tick visits, and
// DefaultSweepBudget the time after which it stops whatever it visited:
// a tick's cost is bounded by both, whatever the number of keys. A mount of
// a million keys is swept in at most 10 ticks when a key's visit takes
// 100 µs, 15 at 150 µs (the bar: a pass over a million keys within
// 15 minutes of ticks); on slower storage the budget keeps every tick short
// and the pass takes longer. The budget also bounds how long the sweep holds
// the governance state's lock, which an alerts listing waits for.
const (
	DefaultSweepBatch  = 100000
	DefaultSweepBudget = 10 * time.Second
)

// errNotUpdating refuses a walker step outside Update: the walkers'
// positions are guarded by the state lock.
var errNotUpdating = errors.New("governance: a walker step needs the state Update passes")

// Cursor is the last key a sweep visited; zero before the first key of a
// pass.
type Cursor struct {
	Client string `json:"client"`
	Key    string `json:"key"`
}

func (c Cursor) atStart() bool { return c.Client == "" }

func (r *Runtime) now() time.Time {
	if r.src.Now != nil {
		return r.src.Now()
	}
	return time.Now()
}

func (r *Runtime) sweepBudget() time.Duration {
	if r.opts.SweepBudget > 0 {
		return r.opts.SweepBudget
	}
	return DefaultSweepBudget
}

func (r *Runtime) stopwatch() time.Time {
	if r.opts.Stopwatch != nil {
		return r.opts.Stopwatch()
	}
	return time.Now()
}

func (r *Runtime) sweepBatch() int {
	if r.opts.SweepBatch > 0 {
		return r.opts.SweepBatch
	}
	return DefaultSweepBatch
}

// Sweep runs one step of the sweep: it calls visit with the client and
// name of each key of the next batch after st.Sweep (at most the batch, and
// none after the budget ran out), and moves st.Sweep past each key
// visited. It starts the key stats of a pass as the pass starts, and
// publishes them when it ends (keystats.go); visit counts each key into
// st.KeysPass. st must be the state Update passes.
//
// A key for which visit returns an error is skipped: the cursor moves past it,
// so one bad entry cannot stop the sweep of every key after it, and the
// next pass visits it again. But when ctx has ended (the node stepping
// down), or a listing fails, Sweep returns the error and leaves the cursor
// before the key it was on, so the next tick resumes there and skips
// nothing. A pass never wraps within a step, so no key is visited twice in
// one.
func (r *Runtime) Sweep(ctx context.Context, s logical.Storage, st *State, visit func(client, name string) error) error {
	if !r.holds(st) {
		return errNotUpdating
	}
	w := &r.keys
	if err := w.seek(ctx, s, r.src, st.Sweep); err != nil {
		return err
	}
	fromStart := st.Sweep.atStart()
	if fromStart && !r.passDue(st) {
		return nil
	}
	st.beginKeyPass()
	if fromStart && st.KeysPass.Started.IsZero() {
		st.KeysPass.Started = r.now()
	}
	start, budget := r.stopwatch(), r.sweepBudget()
	for visited, limit := 0, r.sweepBatch(); visited < limit; {
		if visited > 0 && r.stopwatch().Sub(start) >= budget {
			break
		}
		client, name, ok, err := w.next(ctx, s)
		if err != nil {
			return err
		}
		if !ok {
			st.Sweep = Cursor{}
			st.endKeyPass(r.now())
			if fromStart || visited > 0 {
				break
			}
			// The previous step stopped on the last key: start the new
			// pass now, if it is due, rather than spend a tick on nothing.
			if !r.passDue(st) {
				break
			}
			fromStart = true
			st.KeysPass.Started = r.now()
			if err := w.seek(ctx, s, r.src, st.Sweep); err != nil {
				return err
			}
			continue
		}
		visited++
		if err := visit(client, name); err != nil && ctx.Err() != nil {
			return err
		}
		st.Sweep = Cursor{Client: client, Key: name}
	}
	return nil
}

// passDue reports whether a new pass may start: PassInterval has gone by
// since the last complete pass started.
func (r *Runtime) passDue(st *State) bool {
	last := st.Keys
	if last == nil || last.Started.IsZero() {
		return true
	}
	return !r.now().Before(last.Started.Add(PassInterval(last.Total(), r.sweepRate())))
}

// keyWalker yields the mount's keys in order from cached listings: clients
// are listed once per pass, and a client's key names once per pass when the
// walk reaches it, so a tick in the middle of a big client lists nothing.
// Keys created after a listing are visited in the next pass; keys gone since
// are skipped by the visitor. It is node-local memory, guarded by the state
// lock, and is rebuilt from the persisted cursor whenever it is not
// positioned there (a restart, another node swept meanwhile, or a tick
// failed before saving).
type keyWalker struct {
	valid   bool
	prefix  string // where the keys are listed
	at      Cursor // the key last returned by next
	clients []string
	ci      int // the client being walked, index in clients
	names   []string
	namesOf int // the client whose names are loaded; -1: none
	ni      int // the next name, index in names
}

// seek positions the walker just after c, listing the clients under
// src.ClientPrefix and their keys under src.KeyPrefix.
func (w *keyWalker) seek(ctx context.Context, s logical.Storage, src Sources, c Cursor) error {
	prefix := src.KeyPrefix
	if w.valid && w.prefix == prefix && w.at == c {
		return nil
	}
	*w = keyWalker{prefix: prefix, at: c, namesOf: -1}
	clients, err := s.List(ctx, src.ClientPrefix)
	if err != nil {
		return err
	}
	for i := range clients {
		clients[i] = strings.TrimSuffix(clients[i], "/")
	}
	// Storage lists in order today; the cursor's binary search must not
	// depend on it.
	sort.Strings(clients)
	w.clients = clients
	if !c.atStart() {
		w.ci = sort.SearchStrings(clients, c.Client)
		// If the cursor's client is gone, ci is the client after it.
		if w.ci < len(clients) && clients[w.ci] == c.Client {
			if err := w.loadNames(ctx, s); err != nil {
				return err
			}
			w.ni = sort.SearchStrings(w.names, c.Key)
			if w.ni < len(w.names) && w.names[w.ni] == c.Key {
				w.ni++
			}
		}
	}
	w.valid = true
	return nil
}

func (w *keyWalker) loadNames(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, w.prefix+w.clients[w.ci]+"/")
	if err != nil {
		w.valid = false
		return err
	}
	sort.Strings(names)
	w.names, w.namesOf, w.ni = names, w.ci, 0
	return nil
}

// next returns the next key's client and name, or ok false at the end of
// the pass; the walker then lists afresh for the next pass.
func (w *keyWalker) next(ctx context.Context, s logical.Storage) (client, name string, ok bool, err error) {
	for w.ci < len(w.clients) {
		if w.namesOf != w.ci {
			if err := w.loadNames(ctx, s); err != nil {
				return "", "", false, err
			}
		}
		if w.ni < len(w.names) {
			client, name = w.clients[w.ci], w.names[w.ni]
			w.ni++
			w.at = Cursor{Client: client, Key: name}
			return client, name, true, nil
		}
		w.ci++
	}
	*w = keyWalker{}
	return "", "", false, nil
}
