package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// govState is governance's persisted state (storage "governance/state"):
// counters folded from the lifecycle log, verify outcome totals, recent
// time-to-revoke samples, open alerts by day and type, and the positions of
// the incremental key sweep and of the alert retention. Every field is
// bounded whatever the number of keys (event types and verify outcomes are
// fixed sets, samples are capped, open-alert days are bounded by the
// retention, the cursors are two names of at most 64 characters and an
// alert id), so the entry stays a few tens of KiB.
// Per-key marks live in entries of their own (governance_marks.go).
const storageGovState = "governance/state"

const (
	// maxTTRSamples bounds the time-to-revoke samples kept (most recent).
	maxTTRSamples = 1000
	// openAlertMaxAge drops an alert from time-to-revoke tracking when no
	// revocation followed it for this long.
	openAlertMaxAge = 90 * record.Day
)

type govState struct {
	// LogSeq is the last lifecycle-log entry folded into the counters.
	LogSeq uint64 `json:"log_seq"`
	// Events counts lifecycle-log entries by type.
	Events map[string]uint64 `json:"events"`
	// Verify counts verify outcomes ("active" or the code) flushed from
	// the nodes' in-memory counters.
	Verify map[string]uint64 `json:"verify"`
	// DroppedAlerts counts detections lost to a full buffer.
	DroppedAlerts uint64 `json:"dropped_alerts"`
	// PurgedLeasedKeys counts leased keys named by keys.purged entries
	// (one entry lists a batch, so Events counts batches, not keys). A key
	// listed again after an interrupted pass (lease_purge.go) counts twice.
	PurgedLeasedKeys uint64 `json:"purged_leased_keys"`
	// TTR holds recent time-to-revoke samples, in seconds.
	TTR []float64 `json:"ttr"`
	// Sweep is the last key the incremental sweep visited (zero: the next
	// tick starts a new pass). Persisted so that a new active node carries
	// on where the previous one stopped instead of restarting the pass.
	Sweep sweepCursor `json:"sweep,omitzero"`
	// OpenAlerts counts unacknowledged alerts by UTC day raised and type
	// (alerts_open.go), once OpenAlertsCounted.
	OpenAlerts        map[string]map[string]int `json:"open_alert_days,omitempty"`
	OpenAlertsCounted bool                      `json:"open_alerts_counted,omitempty"`
	// AlertPrune is the last alert the retention examined for being
	// acknowledged (alerts_retention.go).
	AlertPrune string `json:"alert_prune,omitempty"`

	// marks are the per-key marks, read through and written back by
	// saveGovState.
	marks *markStore
	// loaded is the encoding as loaded, to skip writing an unchanged state.
	loaded []byte
}

func loadGovState(ctx context.Context, s logical.Storage) (*govState, error) {
	st := &govState{marks: newMarkStore(s)}
	entry, err := s.Get(ctx, storageGovState)
	if err != nil {
		return nil, fmt.Errorf("reading governance state: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(st); err != nil {
			return nil, fmt.Errorf("decoding governance state: %w", err)
		}
	}
	if st.Events == nil {
		st.Events = map[string]uint64{}
	}
	if st.Verify == nil {
		st.Verify = map[string]uint64{}
	}
	if entry != nil {
		// Re-encode rather than keep entry.Value, so the comparison in
		// saveGovState is between two encodings of the same code.
		if enc, err := logical.StorageEntryJSON(storageGovState, st); err == nil {
			st.loaded = enc.Value
		}
	}
	return st, nil
}

// saveGovState writes the changed marks, then the state. Marks go first so
// that a migration stores them before the state stops holding them.
func saveGovState(ctx context.Context, s logical.Storage, st *govState) error {
	if err := st.marks.flush(ctx); err != nil {
		return err
	}
	entry, err := logical.StorageEntryJSON(storageGovState, st)
	if err != nil {
		return err
	}
	if bytes.Equal(entry.Value, st.loaded) {
		return nil // unchanged: spare the storage (and a cluster) the write
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing governance state: %w", err)
	}
	st.loaded = entry.Value
	return nil
}

// foldLog folds lifecycle-log entries appended since st.LogSeq into the
// counters, time-to-revoke samples, open alerts and alerted marks. Its cost
// is the number of new entries, not the size of the log (but for the one
// count of stored alerts of countOpenAlerts).
func (b *apikeysBackend) foldLog(ctx context.Context, s logical.Storage, st *govState) error {
	if err := b.foldLogEntries(ctx, s, st); err != nil {
		return err
	}
	if !st.OpenAlertsCounted {
		return b.countOpenAlerts(ctx, s, st)
	}
	return nil
}

// foldLogEntries is foldLog without starting the open-alert counts.
func (b *apikeysBackend) foldLogEntries(ctx context.Context, s logical.Storage, st *govState) error {
	head, err := b.log.Head(ctx, s)
	if err != nil {
		return err
	}
	if head.Seq < st.LogSeq {
		st.LogSeq = 0 // the log was reset under us; count it again
		st.Events = map[string]uint64{}
		st.PurgedLeasedKeys = 0
		st.OpenAlerts, st.OpenAlertsCounted = nil, false
	}
	for seq := st.LogSeq + 1; seq <= head.Seq; seq++ {
		rec, err := b.log.Entry(ctx, s, seq)
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
func (st *govState) foldEvent(ctx context.Context, ev eventlog.Event) error {
	if ev.KeyID != "" {
		if err := st.foldAlerted(ctx, ev); err != nil {
			return err
		}
	}
	st.Events[ev.Type]++
	st.foldOpenAlert(ev)
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
func (st *govState) foldAlerted(ctx context.Context, ev eventlog.Event) error {
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
		// Past openAlertMaxAge the alert no longer counts, whether or not
		// the sweep has visited the key to drop the mark yet.
		if ttr := ev.Time.Sub(m.Alerted); ttr <= openAlertMaxAge {
			st.addTTR(ttr.Seconds())
		}
		m.Alerted = time.Time{}
	}
	st.marks.set(ev.KeyID, m)
	return nil
}

func (st *govState) addTTR(seconds float64) {
	if seconds < 0 {
		seconds = 0
	}
	st.TTR = append(st.TTR, seconds)
	if len(st.TTR) > maxTTRSamples {
		st.TTR = st.TTR[len(st.TTR)-maxTTRSamples:]
	}
}
