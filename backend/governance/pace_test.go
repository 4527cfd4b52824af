package governance

import (
	"fmt"
	"testing"
	"time"
)

// paceEnv is an env whose runtime reads the fake clock and whose visits
// count keys into the pass, as the backend's sweep does.
func paceEnv(t *testing.T, opts Options, keys int) *env {
	e := newEnv(t, opts)
	e.r = New(Sources{Log: e.log, KeyPrefix: testKeyPrefix, ClientPrefix: testClientPrefix, Alerts: testAlerts{}, Now: e.clock.Now}, opts)
	for i := 0; i < keys; i++ {
		e.putKeys(fmt.Sprintf("a/k%03d", i))
	}
	return e
}

func (e *env) countingSweep() int {
	e.t.Helper()
	n := 0
	e.update(func(st *State) error {
		return e.r.Sweep(e.ctx, e.s, st, func(client, name string) error {
			st.KeysPass.ByState["active"]++
			n++
			return nil
		})
	})
	return n
}

// A mount larger than the sweep rate is not swept back to back: the next
// pass waits until keys/rate minutes after the previous one started.
func TestSweepPacesPassesOfALargeMount(t *testing.T) {
	e := paceEnv(t, Options{SweepRate: 2}, 6) // 6 keys at 2 a minute: a pass every 3 minutes
	if n := e.countingSweep(); n != 6 {
		t.Fatalf("first pass visited %d keys, want 6", n)
	}
	for _, after := range []time.Duration{0, time.Minute, 2*time.Minute - time.Second} {
		e.clock.Set(testStart.Add(after))
		if n := e.countingSweep(); n != 0 {
			t.Fatalf("%v after the pass started: %d keys visited, want none until 3m", after, n)
		}
	}
	e.clock.Set(testStart.Add(3 * time.Minute))
	if n := e.countingSweep(); n != 6 {
		t.Fatalf("3m after the first pass started: %d keys visited, want a new pass of 6", n)
	}
	if st := e.state(); st.Keys == nil || st.Keys.Total() != 6 || !st.Keys.Started.Equal(testStart.Add(3*time.Minute)) {
		t.Fatalf("published pass: %+v", st.Keys)
	}
}

// A pass split over ticks is paced from its start, and the coverage bound
// caps the wait however slow the rate.
func TestSweepPaceCappedByTheCoverageBound(t *testing.T) {
	e := paceEnv(t, Options{SweepRate: 1, SweepBatch: 4}, 10) // 10 minutes a pass at the rate; batches of 4
	for i, want := range []int{4, 4, 2} {
		e.clock.Set(testStart.Add(time.Duration(i) * time.Minute))
		if n := e.countingSweep(); n != want {
			t.Fatalf("tick %d visited %d keys, want %d", i, n, want)
		}
	}
	e.clock.Set(testStart.Add(10*time.Minute - time.Second))
	if n := e.countingSweep(); n != 0 {
		t.Fatalf("before 10m: %d keys visited", n)
	}
	e.clock.Set(testStart.Add(10 * time.Minute))
	if n := e.countingSweep(); n != 4 {
		t.Fatalf("at 10m: %d keys visited, want the next pass's first batch", n)
	}
	if got := PassInterval(1_000_000, DefaultSweepRate); got != MaxPassInterval {
		t.Fatalf("a million keys: pass interval %v, want the %v cap", got, MaxPassInterval)
	}
	if got := PassInterval(DefaultSweepRate, DefaultSweepRate); got != 0 {
		t.Fatalf("a mount of the rate's size waits %v, want every tick", got)
	}
}
