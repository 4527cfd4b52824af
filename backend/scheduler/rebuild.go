package scheduler

import (
	"context"
	"sync"
	"time"
)

// Rebuild fills runners' queues from storage in the background: started
// once when the mount starts, started again by Retry after a failure. It is
// safe for concurrent use.
type Rebuild struct {
	// timeout bounds one run of the fill.
	timeout time.Duration

	mu      sync.Mutex
	started bool
	run     *rebuildRun // the latest run (before Start: the first one, not started)
}

// rebuildRun is one run of the fill: err is written before done is closed
// and read only after.
type rebuildRun struct {
	done chan struct{}
	err  error
}

// NewRebuild returns a Rebuild whose runs each get at most timeout.
func NewRebuild(timeout time.Duration) *Rebuild {
	return &Rebuild{timeout: timeout, run: &rebuildRun{done: make(chan struct{})}}
}

// Start runs fill in the background unless a rebuild was started before.
// fill gets a context of its own, bounded by the timeout: the request that
// starts the mount is over before a large fill is.
func (r *Rebuild) Start(fill func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	go r.execute(r.run, fill)
}

// Retry runs fill again if the latest run has finished with an error, and
// returns that error; it returns nil and does nothing if the rebuild was
// never started, is still running or succeeded.
func (r *Rebuild) Retry(fill func(ctx context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return nil
	}
	last := r.run
	select {
	case <-last.done:
	default:
		return nil
	}
	if last.err == nil {
		return nil
	}
	r.run = &rebuildRun{done: make(chan struct{})}
	go r.execute(r.run, fill)
	return last.err
}

func (r *Rebuild) execute(run *rebuildRun, fill func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	run.err = fill(ctx)
	close(run.done)
}

// Wait waits for the latest run to finish and returns its error.
func (r *Rebuild) Wait(ctx context.Context) error {
	r.mu.Lock()
	run := r.run
	r.mu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Running reports whether a run is under way, so the queues may not hold
// every item yet.
func (r *Rebuild) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return false
	}
	select {
	case <-r.run.done:
		return false
	default:
		return true
	}
}
