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
