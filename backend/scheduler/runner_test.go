package scheduler

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)

// steppingStopwatch returns a time step later at every reading.
type steppingStopwatch struct {
	now   time.Time
	step  time.Duration
	reads int
}

func (s *steppingStopwatch) read() time.Time {
	s.reads++
	t := s.now
	s.now = s.now.Add(s.step)
	return t
}

// popOne is the step of a pass that handles one item at a time; it
// records what it popped in got.
func popOne(p *Pass, got *[]string) func() error {
	return func() error {
		if it, ok := p.Next(); ok {
			*got = append(*got, it.ID)
		}
		return nil
	}
}

// run runs one pass of r at horizon with at most max items (0: the
// runner's) and returns the ids popped, in order.
func run(t *testing.T, r *Runner, horizon time.Time, max int) ([]string, Result) {
	t.Helper()
	p := r.Begin()
	defer p.End()
	var got []string
	res, err := p.Run(context.Background(), horizon, max, popOne(p, &got))
	if err != nil {
		t.Fatal(err)
	}
	if res.Handled != len(got) {
		t.Fatalf("Handled = %d, popped %d", res.Handled, len(got))
	}
	return got, res
}

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func TestRunnerPopsWhatIsDueInOrder(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 100})
	r.Schedule("c", at(3))
	r.Schedule("a", at(1))
	r.Schedule("later", at(10))
	r.Schedule("b", at(1)) // ties go by id
	r.Schedule("gone", at(0))
	r.Schedule("gone", time.Time{}) // a zero due drops the item
	got, res := run(t, r, at(5), 0)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) || res.Leftover {
		t.Fatalf("popped %v (leftover %v), want %v", got, res.Leftover, want)
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d, want the one not due", r.Len())
	}
	if due, ok := r.Due("later"); !ok || !due.Equal(at(10)) {
		t.Fatalf("Due(later) = %v %v", due, ok)
	}
	// Due at exactly the horizon counts.
	if got, _ := run(t, r, at(10), 0); !reflect.DeepEqual(got, []string{"later"}) {
		t.Fatalf("popped %v at the due time", got)
	}
}

func TestRunnerOfferKeepsFresherDue(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 100})
	r.Schedule("a", at(5))
	if r.Offer("a", at(1)) {
		t.Fatal("Offer replaced a queued item")
	}
	if !r.Offer("b", at(2)) {
		t.Fatal("Offer did not queue an absent item")
	}
	if due, _ := r.Due("a"); !due.Equal(at(5)) {
		t.Fatalf("Due(a) = %v", due)
	}
}

func TestRunnerMaxItems(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 2})
	for i := 0; i < 5; i++ {
		r.Schedule(fmt.Sprintf("k%d", i), at(i))
	}
	got, res := run(t, r, at(10), 0)
	if !reflect.DeepEqual(got, []string{"k0", "k1"}) || !res.Leftover {
		t.Fatalf("first pass popped %v (leftover %v)", got, res.Leftover)
	}
	// A pass may be given its own maximum.
	got, res = run(t, r, at(10), 5)
	if !reflect.DeepEqual(got, []string{"k2", "k3", "k4"}) || res.Leftover {
		t.Fatalf("second pass popped %v (leftover %v)", got, res.Leftover)
	}
}

// TestRunnerBudgetIsRealTime: the budget is measured on the stopwatch, not
// on the horizon's (domain) time, and checked between steps.
func TestRunnerBudgetIsRealTime(t *testing.T) {
	sw := &steppingStopwatch{now: time.Unix(0, 0), step: 10 * time.Second}
	r := NewRunner(Limits{Budget: 25 * time.Second, MaxItems: 100}, WithStopwatch(sw.read))
	for i := 0; i < 5; i++ {
		r.Schedule(fmt.Sprintf("k%d", i), at(i))
	}
	// Readings: start 0s; checks at 10s, 20s (two steps run), 30s (over).
	got, res := run(t, r, at(10), 0)
	if !reflect.DeepEqual(got, []string{"k0", "k1"}) || !res.Leftover {
		t.Fatalf("popped %v (leftover %v)", got, res.Leftover)
	}
	// A budget used up at the first check handles nothing.
	sw.step = time.Minute
	if got, res := run(t, r, at(10), 0); len(got) != 0 || !res.Leftover {
		t.Fatalf("popped %v (leftover %v) with no budget left", got, res.Leftover)
	}
	// Nothing due: no leftover, whatever the budget.
	if got, res := run(t, r, at(0), 0); len(got) != 0 || res.Leftover {
		t.Fatalf("popped %v (leftover %v) with nothing due", got, res.Leftover)
	}
}

// TestRunnerIdlePassIsConstant: a pass with nothing due reads the stopwatch
// twice and calls its step once, however many items are queued.
func TestRunnerIdlePassIsConstant(t *testing.T) {
	sw := &steppingStopwatch{now: time.Unix(0, 0)}
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 100}, WithStopwatch(sw.read))
	for i := 0; i < 10000; i++ {
		r.Schedule(fmt.Sprintf("k%05d", i), at(60+i))
	}
	p := r.Begin()
	steps := 0
	res, err := p.Run(context.Background(), at(59), 0, func() error {
		steps++
		p.Next()
		return nil
	})
	p.End()
	if err != nil || res.Handled != 0 || res.Leftover || steps != 1 || sw.reads != 2 {
		t.Fatalf("idle pass: %+v %v, %d steps, %d stopwatch reads", res, err, steps, sw.reads)
	}
}

func TestRunnerStopsOnContextAndOnError(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 100})
	for i := 0; i < 5; i++ {
		r.Schedule(fmt.Sprintf("k%d", i), at(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := r.Begin()
	res, err := p.Run(ctx, at(10), 0, func() error {
		p.Next()
		cancel()
		return nil
	})
	p.End()
	if err != nil || res.Handled != 1 || !res.Leftover {
		t.Fatalf("cancelled pass: %+v %v", res, err)
	}

	failing := errors.New("storage unavailable")
	p = r.Begin()
	res, err = p.Run(context.Background(), at(10), 0, func() error {
		p.Next()
		return failing
	})
	p.End()
	if !errors.Is(err, failing) || res.Handled != 1 {
		t.Fatalf("failing pass: %+v %v", res, err)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d after two items were popped", r.Len())
	}
}

// TestRunnerBatchesAndLater: a step may pop a batch (never beyond the
// pass's maximum); items set aside with Later come back after the pass, at
// their own due time, unless a change queued them meanwhile.
func TestRunnerBatchesAndLater(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 5})
	for i := 0; i < 8; i++ {
		r.Schedule(fmt.Sprintf("k%d", i), at(i))
	}
	p := r.Begin()
	var batches [][]string
	res, err := p.Run(context.Background(), at(10), 0, func() error {
		var batch []string
		for i := 0; i < 3; i++ {
			it, ok := p.Next()
			if !ok {
				break
			}
			batch = append(batch, it.ID)
			switch it.ID {
			case "k1":
				p.Later(it)
			case "k3":
				p.Later(it)
				// k3 changes while set aside: its fresher due time
				// stands.
				r.Schedule("k3", at(30))
			}
		}
		if len(batch) > 0 {
			batches = append(batches, batch)
		}
		return nil
	})
	p.End()
	if err != nil || res.Handled != 5 || !res.Leftover {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if want := [][]string{{"k0", "k1", "k2"}, {"k3", "k4"}}; !reflect.DeepEqual(batches, want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	if due, ok := r.Due("k1"); !ok || !due.Equal(at(1)) {
		t.Fatalf("k1 set aside came back at %v %v", due, ok)
	}
	if due, ok := r.Due("k3"); !ok || !due.Equal(at(30)) {
		t.Fatalf("k3 at %v %v, want the fresher due time", due, ok)
	}
	if n := r.CountDue(at(10)); n != 4 { // k1, k5, k6, k7
		t.Fatalf("CountDue = %d", n)
	}
}

// TestRunnerOnePassAtATime: Begin waits for the pass before it to end,
// while Schedule never waits for a pass.
func TestRunnerOnePassAtATime(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 100})
	first := r.Begin()
	r.Schedule("a", at(0))
	begun := make(chan *Pass)
	go func() { begun <- r.Begin() }()
	select {
	case <-begun:
		t.Fatal("a second pass began while the first was open")
	case <-time.After(20 * time.Millisecond):
	}
	first.End()
	second := <-begun
	second.End()
}
