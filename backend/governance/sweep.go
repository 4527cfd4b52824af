package governance

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// The background key sweep (idle revocation, review and overdue flags) is
// incremental: each governance tick visits the next keys in storage order
// (client, then key name), carrying on after the last key the previous tick
// visited, and starts a new pass after the last key of the mount. A key
// that exists when a pass starts is visited in it; one created during a
// pass, in that pass or the next.

// How many keys a tick visits is the mount's quota, spread evenly over the
// ticks: a mount of up to DefaultSweepQuota keys is swept whole every tick;
// a larger one at DefaultSweepQuota keys a tick, so the sweep's cost per
// tick stops growing with the mount, until a pass would take more than
// PassTicks ticks; beyond that, n/PassTicks keys a tick. PassTicks is
// CoverageTicks, the coverage the mount promises (every key visited at
// least once in 15 minutes of ticks, Vault ticking once a minute), less
// three ticks of slack for ticks the budget cuts short. Even ticks rather
// than a whole pass in one tick then nothing for minutes keep every
// tick's cost alike, and any window of ticks costs in proportion to its
// length.
const (
	DefaultSweepQuota = 10000
	CoverageTicks     = 15
	PassTicks         = CoverageTicks - 3
)

// TickQuota is how many keys a tick visits in a mount of n keys (n < 0:
// not known), at quota keys a tick, at most batch. A mount of unknown size
// is visited a whole batch a tick, so it is still covered within
// CoverageTicks ticks.
func TickQuota(n, quota, batch int) int {
	if n < 0 {
		return batch
	}
	return min(max(quota, (n+PassTicks-1)/PassTicks), batch)
}

func (r *Runtime) sweepQuota() int {
	if r.opts.SweepQuota > 0 {
		return r.opts.SweepQuota
	}
	return DefaultSweepQuota
}

// tickQuota is the keys this tick of st's sweep visits.
func (r *Runtime) tickQuota(st *State) int {
	return TickQuota(st.mountSize(), r.sweepQuota(), r.sweepBatch())
}

// mountSize is how many keys the sweep spreads its quota over: those its
// last complete pass counted; before any pass completed (a mount filled
// faster than a pass, a state from a version that did not count), the
// keys issued less the leased keys purged, from the counters folded from
// the lifecycle log, which overcounts only keys deleted otherwise; -1 when
// neither is known (the log not folded yet).
func (st *State) mountSize() int {
	if st.Keys != nil {
		return st.Keys.Total()
	}
	if issued := st.Events[eventlog.KeyIssued]; issued > 0 {
		return int(issued - min(issued, st.PurgedLeasedKeys))
	}
	return -1
}

// DefaultSweepBatch is the most keys one tick visits, and
// DefaultSweepBudget the time after which it stops whatever it visited:
// a tick's cost is bounded by both, whatever the number of keys. A mount of
// a million keys is visited at about 83k keys a tick (PassTicks), 8.3 s
// when a key's visit takes 100 µs; on slower storage the budget keeps
// every tick short and the pass takes longer, within CoverageTicks up to
// 150 µs a key. The budget also bounds how
// long the sweep holds the governance state's lock, which an alerts
// listing waits for.
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

// after reports whether c comes after d in storage order.
func (c Cursor) after(d Cursor) bool {
	if c.Client != d.Client {
		return c.Client > d.Client
	}
	return c.Key > d.Key
}

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
// name of each key after st.Sweep, up to the tick's quota (TickQuota) and
// none after the budget ran out, and moves st.Sweep past each key
// visited. It starts the key stats of a pass as the pass starts, and
// publishes them when it ends (keystats.go); visit counts each key into
// st.KeysPass. st must be the state Update passes.
//
// A key for which visit returns an error is skipped: the cursor moves past it,
// so one bad entry cannot stop the sweep of every key after it, and the
// next pass visits it again. But when ctx has ended (the node stepping
// down), or a listing fails, Sweep returns the error and leaves the cursor
// before the key it was on, so the next tick resumes there and skips
// nothing. A step that began mid-pass carries on into the next pass, up to
// the key it began after, so no key is visited twice in one step.
func (r *Runtime) Sweep(ctx context.Context, s logical.Storage, st *State, visit func(client, name string) error) error {
	if !r.holds(st) {
		return errNotUpdating
	}
	w := &r.keys
	if err := w.seek(ctx, s, r.src, st.Sweep); err != nil {
		return err
	}
	// The keys after entry to the end of the pass are this step's to
	// visit first; wrapping into the next pass, it stops after entry.
	entry, wrapped := st.Sweep, false
	st.beginKeyPass()
	start, budget := r.stopwatch(), r.sweepBudget()
	for visited, limit := 0, r.tickQuota(st); visited < limit; {
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
			if entry.atStart() || wrapped {
				break
			}
			// The step began mid-pass (after a tick cut short by its
			// budget, or one that stopped on the last key): it goes on
			// with the next pass rather than leave its quota unused.
			wrapped = true
			if err := w.seek(ctx, s, r.src, st.Sweep); err != nil {
				return err
			}
			continue
		}
		at := Cursor{Client: client, Key: name}
		if wrapped && at.after(entry) {
			w.unread(st.Sweep)
			break
		}
		visited++
		if err := visit(client, name); err != nil && ctx.Err() != nil {
			return err
		}
		st.Sweep = at
	}
	return nil
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

// unread steps the walker back over the key next just returned, to prev,
// the key returned before it.
func (w *keyWalker) unread(prev Cursor) {
	w.ni--
	w.at = prev
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
