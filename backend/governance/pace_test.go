package governance

import (
	"fmt"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
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

// A mount larger than the quota is swept at the quota every tick, never a
// whole pass in one tick then nothing: any run of ticks costs in
// proportion to its length. The first pass, of a mount whose size is not
// known yet, takes whole batches.
func TestSweepSpreadsALargeMountEvenlyOverTicks(t *testing.T) {
	e := paceEnv(t, Options{SweepQuota: 2, SweepBatch: 8}, 6)
	if n := e.countingSweep(); n != 6 {
		t.Fatalf("first pass visited %d keys, want the whole batch's 6", n)
	}
	if st := e.state(); st.Keys == nil || st.Keys.Total() != 6 {
		t.Fatalf("published pass: %+v", st.Keys)
	}
	for tick := range 9 {
		if n := e.countingSweep(); n != 2 {
			t.Fatalf("tick %d after the first pass visited %d keys, want the quota of 2", tick, n)
		}
	}
	if st := e.state(); st.Keys.Total() != 6 || st.Sweep != (Cursor{Client: "a", Key: "k005"}) {
		t.Fatalf("after three more passes: published %d keys, cursor %+v", st.Keys.Total(), st.Sweep)
	}
}

// Past PassTicks passes at the quota, a tick takes n/PassTicks keys, so
// every key is still visited within CoverageTicks ticks, with slack.
func TestSweepQuotaGrowsToKeepTheCoverageBound(t *testing.T) {
	keys := 3*PassTicks + 1
	e := paceEnv(t, Options{SweepQuota: 1}, keys)
	if n := e.countingSweep(); n != keys {
		t.Fatalf("first pass visited %d keys, want %d", n, keys)
	}
	ticks, seen := 0, 0
	for seen < keys {
		seen += e.countingSweep()
		ticks++
	}
	if ticks > PassTicks {
		t.Fatalf("second pass: %d keys took %d ticks, want at most %d", keys, ticks, PassTicks)
	}
	for _, c := range []struct{ n, want int }{
		{-1, DefaultSweepBatch},
		{0, DefaultSweepQuota},
		{DefaultSweepQuota, DefaultSweepQuota},
		{100_000, DefaultSweepQuota},
		{120_000, DefaultSweepQuota},
		{150_000, 12_500},
		{1_000_000, 83_334},
		{10_000_000, DefaultSweepBatch},
	} {
		if got := TickQuota(c.n, DefaultSweepQuota, DefaultSweepBatch); got != c.want {
			t.Errorf("TickQuota(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// Before any pass completed, the mount's size is the keys the folded log
// says were issued, less the leased keys purged: a mount filled faster than
// a pass (a bulk seeding, an upgrade) is swept at its quota, not a whole
// batch every tick until a pass happens to end.
func TestSweepQuotaBeforeTheFirstPassFromTheIssuedCount(t *testing.T) {
	e := paceEnv(t, Options{SweepQuota: 2, SweepBatch: 8}, 6)
	e.update(func(st *State) error {
		st.Events = map[string]uint64{eventlog.KeyIssued: 9}
		st.PurgedLeasedKeys = 3
		return nil
	})
	if n := e.countingSweep(); n != 2 {
		t.Fatalf("first tick visited %d keys, want the quota of 2 for the 6 keys the log counts", n)
	}
	e.update(func(st *State) error {
		st.PurgedLeasedKeys = 9 // more purged than issued: a reset log, say
		return nil
	})
	if n := e.countingSweep(); n != 2 {
		t.Fatalf("second tick visited %d keys, want the quota", n)
	}
}

// A step that ends a pass short of its quota (it began mid-pass, after a
// tick the budget cut short) goes on with the next pass up to where it
// began: a mount's ticks all cost their quota, and none visits a key twice.
func TestSweepStepGoesOnIntoTheNextPass(t *testing.T) {
	e := paceEnv(t, Options{SweepQuota: 4, SweepBatch: 8}, 6)
	for tick, want := range []int{6, 4, 4, 4, 4} {
		if n := e.countingSweep(); n != want {
			t.Fatalf("tick %d visited %d keys, want %d", tick, n, want)
		}
		if st := e.state(); st.Keys == nil || st.Keys.Total() != 6 {
			t.Fatalf("tick %d: published pass %+v, want 6 keys", tick, st.Keys)
		}
	}
	if got := e.state().Sweep; got != (Cursor{Client: "a", Key: "k003"}) {
		t.Fatalf("cursor %+v after 22 visits of 6 keys, want a/k003", got)
	}
}
