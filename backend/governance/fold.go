package governance

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const (
	// maxTTRSamples bounds the time-to-revoke samples kept (most recent).
	maxTTRSamples = 1000
	// OpenAlertMaxAge drops an alert from time-to-revoke tracking when no
	// revocation followed it for this long.
	OpenAlertMaxAge = 90 * record.Day
)

// FoldLog folds lifecycle-log entries appended since st.LogSeq into the
// counters, time-to-revoke samples, open alerts and alerted marks. Its
// cost is the number of new entries, not the size of the log (but for the
// one count of stored alerts that starts the open-alert counts).
func (r *Runtime) FoldLog(ctx context.Context, s logical.Storage, st *State) error {
	if err := r.foldEntries(ctx, s, st); err != nil {
		return err
	}
	if !st.OpenAlertsCounted {
		return r.countStoredAlerts(ctx, s, st)
	}
	return nil
}

// foldEntries is FoldLog without starting the open-alert counts.
func (r *Runtime) foldEntries(ctx context.Context, s logical.Storage, st *State) error {
	head, err := r.src.Log.Head(ctx, s)
	if err != nil {
		return err
	}
	if head.Seq < st.LogSeq {
		st.LogSeq = 0 // the log was reset under us; count it again
		st.Events = map[string]uint64{}
		st.PurgedLeasedKeys = 0
		st.Lifespans = nil
		st.OpenAlerts, st.OpenAlertsCounted = nil, false
	}
	for seq := st.LogSeq + 1; seq <= head.Seq; seq++ {
		rec, err := r.src.Log.Entry(ctx, s, seq)
		if err != nil {
			return err
		}
		if rec != nil {
			var ev eventlog.Event
			// An unreadable entry is log/verify's business.
			if json.Unmarshal(rec.Event, &ev) == nil {
				if err := st.foldEvent(ctx, ev); err != nil {
					return err
				}
			}
		}
		st.LogSeq = seq
	}
	return nil
}

// foldEvent counts one event. On error nothing was counted, so the event
// is folded again from the same st.LogSeq.
func (st *State) foldEvent(ctx context.Context, ev eventlog.Event) error {
	if ev.KeyID != "" {
		if err := st.foldAlerted(ctx, ev); err != nil {
			return err
		}
	}
	st.Events[ev.Type]++
	st.foldOpenAlert(ev)
	st.foldLifespan(ev)
	switch ev.Type {
	case eventlog.KeysPurged:
		if n, err := strconv.ParseUint(ev.Details["count"], 10, 64); err == nil {
			st.PurgedLeasedKeys += n
		}
	case eventlog.LeakReported:
		if ms, err := strconv.ParseInt(ev.Details["time_to_revoke_ms"], 10, 64); err == nil {
			st.addTTR(float64(ms) / 1000)
		}
	}
	return nil
}

// foldAlerted tracks a key's first alert not yet followed by a revocation,
// and turns the revocation into a time-to-revoke sample.
func (st *State) foldAlerted(ctx context.Context, ev eventlog.Event) error {
	alert := ev.Type == eventlog.AlertRaised && ev.Details["type"] != record.AlertLeakReported // leaks measure their own
	if !alert && ev.Type != eventlog.KeyRevoked {
		return nil
	}
	m, err := st.marks.get(ctx, ev.KeyID)
	if err != nil {
		return err
	}
	switch {
	case alert && m.Alerted.IsZero():
		m.Alerted = ev.Time
	case !alert && !m.Alerted.IsZero():
		// Past OpenAlertMaxAge the alert no longer counts, whether or not
		// the sweep has visited the key to drop the mark yet.
		if ttr := ev.Time.Sub(m.Alerted); ttr <= OpenAlertMaxAge {
			st.addTTR(ttr.Seconds())
		}
		m.Alerted = time.Time{}
	}
	st.marks.set(ev.KeyID, m)
	return nil
}

func (st *State) addTTR(seconds float64) {
	if seconds < 0 {
		seconds = 0
	}
	st.TTR = append(st.TTR, seconds)
	if len(st.TTR) > maxTTRSamples {
		st.TTR = st.TTR[len(st.TTR)-maxTTRSamples:]
	}
}
