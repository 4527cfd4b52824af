package governance

import (
	"time"

	"context"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// AlertStore reads the alerts the backend stores. Governance counts them
// once when a mount has no open-alert counts yet, and ages them for the
// retention; writing and deleting alerts stay with the backend, which logs
// them.
type AlertStore interface {
	// AlertIDs lists the ids of the stored alerts, in any order.
	AlertIDs(ctx context.Context, s logical.Storage) ([]string, error)
	// Alert reads one alert, nil if it is gone.
	Alert(ctx context.Context, s logical.Storage, id string) (*record.Alert, error)
}

// Sources are what governance reads but does not own.
type Sources struct {
	// Log is the lifecycle log, whose entries are folded into the state.
	Log *eventlog.Log
	// KeyPrefix is where keys are stored, each at KeyPrefix+client+"/"+name:
	// the sweep walks that two-level listing.
	KeyPrefix string
	// ClientPrefix lists the clients, one entry each, so finding the
	// clients does not list KeyPrefix (which on Raft reads every key).
	ClientPrefix string
	// Alerts reads the stored alerts.
	Alerts AlertStore
	// Now stamps the key stats a sweep pass publishes (nil: time.Now).
	Now func() time.Time
}

// Options tune the batches; the zero value is production's. Tests shrink
// them to cross batch boundaries with a handful of keys or alerts.
type Options struct {
	// SweepBatch is the most keys one tick visits (DefaultSweepBatch).
	SweepBatch int
	// SweepBudget is the time after which a tick's sweep stops, at
	// whatever key (DefaultSweepBudget).
	SweepBudget time.Duration
	// SweepQuota is the keys a tick a large mount is swept at
	// (DefaultSweepQuota; TickQuota).
	SweepQuota int
	// Stopwatch measures the sweep against its budget (nil: time.Now).
	Stopwatch func() time.Time
	// AlertPruneBatch is the most alerts one tick examines or deletes
	// (DefaultAlertPruneBatch).
	AlertPruneBatch int
	// AlertListMax bounds each part of the retention's listing
	// (DefaultAlertListMax).
	AlertListMax int
}

// Runtime is the node-local side of governance: the lock that serialises
// changes of the persisted state, the positions of the key sweep and of
// the alert retention, and the lock that keeps the first count of open
// alerts consistent with the log. One per mount.
type Runtime struct {
	src  Sources
	opts Options

	// mu serialises load, change and save of the state, and changes of
	// stored alerts that must not interleave with them (lock order:
	// backend/locks.go).
	mu sync.Mutex
	// updating is the state Update is running fn with; guarded by mu.
	updating *State
	// keys and alerts are the walkers' node-local listings; guarded by
	// mu.
	keys   keyWalker
	alerts alertWalker

	// alertWrites is held shared by every writer of an alert from its
	// write through its log entry, and exclusively while the stored
	// alerts are counted (openalerts.go).
	alertWrites sync.RWMutex
}

// New returns the runtime of a mount.
func New(src Sources, opts Options) *Runtime {
	return &Runtime{src: src, opts: opts}
}

// Update loads the state, runs fn with it and saves what fn changed (the
// state entry if its encoding changed, and the marks fn changed) unless fn
// returns an error, all under the state lock. Sweep and PruneAlerts take
// the state fn is given, and only that one.
func (r *Runtime) Update(ctx context.Context, s logical.Storage, fn func(*State) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := load(ctx, s)
	if err != nil {
		return err
	}
	r.updating = st
	defer func() { r.updating = nil }()
	if err := fn(st); err != nil {
		return err
	}
	return st.save(ctx, s)
}

// Snapshot returns the state with the lifecycle log folded in up to its
// head, and writes nothing: what a tick would save, for readers (metrics).
// It does not take the state lock; its marks are read, never written.
func (r *Runtime) Snapshot(ctx context.Context, s logical.Storage) (*State, error) {
	st, err := load(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := r.FoldLog(ctx, s, st); err != nil {
		return nil, err
	}
	return st, nil
}

// LockAlertWrite is taken by every writer of an alert (raising one, a key
// change that raises some, acknowledging one), from the alert's write
// through its log entry, so the first count of stored alerts never sees an
// alert without its entry. Writers share it. It returns the unlock.
func (r *Runtime) LockAlertWrite() (unlock func()) {
	r.alertWrites.RLock()
	return r.alertWrites.RUnlock
}

// LockAlertChange is taken to change a stored alert outside Update (an
// acknowledgement): it excludes a tick's flush and retention, then takes
// LockAlertWrite. It returns the unlock of both.
func (r *Runtime) LockAlertChange() (unlock func()) {
	r.mu.Lock()
	r.alertWrites.RLock()
	return func() {
		r.alertWrites.RUnlock()
		r.mu.Unlock()
	}
}

// holds reports whether st is the state Update is running with, which the
// walkers' node-local positions need (they are guarded by the state lock).
func (r *Runtime) holds(st *State) bool {
	return st != nil && r.updating == st
}
