package scheduler

import (
	"context"
	"sync"
	"time"
)

// Limits bound one pass of a Runner.
type Limits struct {
	// Budget is the real time a pass may take. It is checked between
	// steps, so a step that has started always finishes.
	Budget time.Duration
	// MaxItems is how many items a pass pops at most (a pass may be given
	// its own number instead).
	MaxItems int
}

// Item is a queued id and the time it falls due.
type Item struct {
	ID  string
	Due time.Time
}

// Runner pops the items of its queue that are due and hands them to the
// caller's work in budgeted passes. It is safe for concurrent use.
type Runner struct {
	queue  *dueQueue
	limits Limits
	// stopwatch measures a pass's real elapsed time against its budget.
	stopwatch func() time.Time
	// pass is held from Begin to End: one pass at a time.
	pass sync.Mutex
}

// Option changes how NewRunner builds a Runner.
type Option func(*Runner)

// WithStopwatch makes passes measure their budget with now instead of the
// real clock, so a test can use a budget up at a moment of its choosing.
func WithStopwatch(now func() time.Time) Option {
	return func(r *Runner) { r.stopwatch = now }
}

// NewRunner returns a Runner with an empty queue whose passes keep to limits.
func NewRunner(limits Limits, opts ...Option) *Runner {
	r := &Runner{queue: newDueQueue(), limits: limits, stopwatch: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Schedule sets when id is next due; a zero due drops it. Callers keep an
// item current by calling it after every change of what the item stands for.
func (r *Runner) Schedule(id string, due time.Time) {
	if due.IsZero() {
		r.queue.Remove(id)
		return
	}
	r.queue.Upsert(id, due)
}

// Offer queues id at due only if it is not queued yet, and reports whether
// it did. A rebuild uses it: whatever a change queued meanwhile is fresher
// than what the rebuild read.
func (r *Runner) Offer(id string, due time.Time) bool {
	return r.queue.Offer(id, due)
}

// Earlier queues id at due unless it is queued at or before due already,
// and reports whether it did. A source that may be stale (an index of due
// times in storage) fills the queue with it: it may make an item early,
// which costs the caller a re-read, but never later than a due time it
// holds, which could hold the item back.
func (r *Runner) Earlier(id string, due time.Time) bool {
	return r.queue.Earlier(id, due)
}

// Remove drops id; it is a no-op for an absent id.
func (r *Runner) Remove(id string) { r.queue.Remove(id) }

// Due returns when id is due, if it is queued.
func (r *Runner) Due(id string) (time.Time, bool) { return r.queue.Due(id) }

// Len is the number of queued items.
func (r *Runner) Len() int { return r.queue.Len() }

// Earliest returns the earliest due time queued, if any, so a caller can
// tell whether anything due before a time is still waiting.
func (r *Runner) Earliest() (time.Time, bool) {
	_, due, ok := r.queue.Peek()
	return due, ok
}

// CountDue returns how many queued items are due at horizon, in O(due).
func (r *Runner) CountDue(horizon time.Time) int { return r.queue.CountDue(horizon) }

// Pass is one pass of a Runner, from Begin to End. Only the goroutine that
// began it uses it.
type Pass struct {
	r       *Runner
	horizon time.Time
	max     int
	handled int
	later   []Item
}

// Result is what a pass did.
type Result struct {
	// Handled is how many items the pass popped.
	Handled int
	// Leftover: a limit (items, budget or the context) ended the pass
	// while items were still due.
	Leftover bool
}

// Begin starts a pass, after the previous one has ended. The caller must
// call End; between the two it may do more than Run (read what the pass
// needs, count what is left) without another pass interleaving.
func (r *Runner) Begin() *Pass {
	r.pass.Lock()
	return &Pass{r: r}
}

// End ends the pass and lets the next one begin.
func (p *Pass) End() { p.r.pass.Unlock() }

// Run calls step until step pops nothing (nothing due is left), step fails,
// or a limit is reached: maxItems items popped (0: the runner's MaxItems),
// the runner's budget of real time used up, or ctx done. Items are due when
// their due time is at or before horizon. Step pops with Next and may pop
// several items (a batch) at a time. Items set aside with Later are queued
// again before Run returns. The error is step's.
func (p *Pass) Run(ctx context.Context, horizon time.Time, maxItems int, step func() error) (Result, error) {
	r := p.r
	if maxItems <= 0 {
		maxItems = r.limits.MaxItems
	}
	p.horizon, p.max, p.handled = horizon, maxItems, 0
	var res Result
	var err error
	started := r.stopwatch()
	for {
		if p.handled >= p.max || r.stopwatch().Sub(started) >= r.limits.Budget || ctx.Err() != nil {
			if _, due, ok := r.queue.Peek(); ok && !due.After(horizon) {
				res.Leftover = true
			}
			break
		}
		before := p.handled
		if err = step(); err != nil || p.handled == before {
			break
		}
	}
	for _, it := range p.later {
		r.queue.Offer(it.ID, it.Due)
	}
	p.later = nil
	res.Handled = p.handled
	return res, err
}

// Next pops the earliest item due at the pass's horizon, unless the pass
// has popped its maximum already or nothing is due.
func (p *Pass) Next() (Item, bool) {
	if p.handled >= p.max {
		return Item{}, false
	}
	id, due, ok := p.r.queue.PopDue(p.horizon)
	if !ok {
		return Item{}, false
	}
	p.handled++
	return Item{ID: id, Due: due}, true
}

// Later sets a popped item aside to be queued again, at it.Due, when Run
// returns: the next pass (not this one) tries it again. Should a change
// have queued the id meanwhile, that fresher due time stands.
func (p *Pass) Later(it Item) {
	p.later = append(p.later, it)
}
