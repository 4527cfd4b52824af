package governance

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func (e *env) appendEvent(ev eventlog.Event) {
	e.t.Helper()
	if err := e.log.Append(e.ctx, e.s, ev); err != nil {
		e.t.Fatal(err)
	}
}

// A revocation after a key's first alert is a time-to-revoke sample, unless
// the alert is older than OpenAlertMaxAge; leak reports bring their own
// sample; keys.purged counts the keys it names.
func TestFoldLogCountsAndSamples(t *testing.T) {
	e := newEnv(t, Options{})
	t0 := testStart
	raised := func(keyID string, at time.Time) eventlog.Event {
		return eventlog.Event{Type: eventlog.AlertRaised, Time: at, KeyID: keyID, Details: map[string]string{"type": record.AlertNewAddress}}
	}
	revoked := func(keyID string, at time.Time) eventlog.Event {
		return eventlog.Event{Type: eventlog.KeyRevoked, Time: at, KeyID: keyID}
	}
	e.appendEvent(raised("kid_a", t0))
	e.appendEvent(raised("kid_a", t0.Add(5*time.Second))) // not the first: no new start
	e.appendEvent(revoked("kid_a", t0.Add(10*time.Second)))
	e.appendEvent(raised("kid_b", t0))
	e.appendEvent(revoked("kid_b", t0.Add(OpenAlertMaxAge+time.Second)))
	e.appendEvent(eventlog.Event{Type: eventlog.LeakReported, Time: t0, KeyID: "kid_c", Details: map[string]string{"time_to_revoke_ms": "2500"}})
	e.appendEvent(eventlog.Event{Type: eventlog.KeysPurged, Time: t0, Details: map[string]string{"count": "7"}})

	e.update(func(st *State) error { return e.r.FoldLog(e.ctx, e.s, st) })
	st := e.state()
	if len(st.TTR) != 2 || st.TTR[0] != 10 || st.TTR[1] != 2.5 {
		t.Fatalf("time-to-revoke samples %v, want [10 2.5]", st.TTR)
	}
	if st.PurgedLeasedKeys != 7 || st.Events[eventlog.AlertRaised] != 3 || st.Events[eventlog.KeyRevoked] != 2 || st.LogSeq != 7 {
		t.Fatalf("counters: purged %d, events %v, log seq %d", st.PurgedLeasedKeys, st.Events, st.LogSeq)
	}
	if keys := e.list(MarksPrefix); len(keys) != 0 {
		t.Fatalf("marks left after every alerted key was revoked: %v", keys)
	}
}

// The samples kept are the most recent maxTTRSamples; negative ones count
// as zero.
func TestTTRSamplesBounded(t *testing.T) {
	st := &State{}
	st.addTTR(-3)
	for i := 1; i <= 2*maxTTRSamples; i++ {
		st.addTTR(float64(i))
	}
	if len(st.TTR) != maxTTRSamples || st.TTR[0] != maxTTRSamples+1 || st.TTR[maxTTRSamples-1] != 2*maxTTRSamples {
		t.Fatalf("%d samples, from %v to %v", len(st.TTR), st.TTR[0], st.TTR[len(st.TTR)-1])
	}
	st = &State{}
	st.addTTR(-3)
	if st.TTR[0] != 0 {
		t.Fatalf("negative sample kept as %v", st.TTR[0])
	}
}

// Entries that end a secret and name its version's creation are lifespan
// samples; others, and entries without the detail, are not.
func TestFoldLifespans(t *testing.T) {
	e := newEnv(t, Options{})
	t0 := testStart
	created := map[string]string{DetailVersionCreated: t0.Format(time.RFC3339)}
	e.appendEvent(eventlog.Event{Type: eventlog.KeyRetired, Time: t0.Add(30 * time.Minute), KeyID: "kid_a", Details: created})
	e.appendEvent(eventlog.Event{Type: eventlog.KeyRevoked, Time: t0.Add(3 * 24 * time.Hour), KeyID: "kid_b", Details: created})
	e.appendEvent(eventlog.Event{Type: eventlog.KeyExpired, Time: t0.Add(400 * 24 * time.Hour), KeyID: "kid_c", Details: created})
	e.appendEvent(eventlog.Event{Type: eventlog.KeyRevoked, Time: t0.Add(time.Hour), KeyID: "kid_d"})                   // written before the detail existed
	e.appendEvent(eventlog.Event{Type: eventlog.KeyRotated, Time: t0.Add(time.Hour), KeyID: "kid_e", Details: created}) // ends nothing

	e.update(func(st *State) error { return e.r.FoldLog(e.ctx, e.s, st) })
	l := e.state().Lifespans
	if l == nil || l.Total != 3 {
		t.Fatalf("lifespans %+v, want 3 samples", l)
	}
	// Bounds: 1h, 1d, 7d, 30d, 90d, 180d, 365d (cumulative); 400d is past them all.
	want := []uint64{1, 1, 2, 2, 2, 2, 2}
	for i, n := range want {
		if l.Count[i] != n {
			t.Fatalf("bucket %v: %d, want %d (%v)", LifespanBounds[i], l.Count[i], n, l.Count)
		}
	}
	if wantSum := (30*time.Minute + 3*24*time.Hour + 400*24*time.Hour).Seconds(); l.Sum != wantSum {
		t.Fatalf("sum %v, want %v", l.Sum, wantSum)
	}
}
