package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// govState is governance's persisted state (storage "governance/state"):
// counters folded from the lifecycle log, verify outcome totals, recent
// time-to-revoke samples and the marks that keep background alerts to one
// per key and cause.
const storageGovState = "governance/state"

const (
	// maxTTRSamples bounds the time-to-revoke samples kept (most recent).
	maxTTRSamples = 1000
	// maxOpenAlerts bounds the keys with an alert awaiting revocation.
	maxOpenAlerts = 10000
	// openAlertMaxAge drops an alert from time-to-revoke tracking when no
	// revocation followed it for this long.
	openAlertMaxAge = 90 * day
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
	// OpenAlerts maps a key id to its first alert not yet followed by a
	// revocation.
	OpenAlerts map[string]time.Time `json:"open_alerts"`
	// Review maps a key id to when it was flagged for review (alerted
	// once until used again).
	Review map[string]time.Time `json:"review"`
	// Overdue maps a key id to the rotation due time it was alerted for.
	Overdue map[string]time.Time `json:"overdue"`

	// loaded is the encoding as loaded, to skip writing an unchanged state.
	loaded []byte
}

func loadGovState(ctx context.Context, s logical.Storage) (*govState, error) {
	st := &govState{}
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
	if st.OpenAlerts == nil {
		st.OpenAlerts = map[string]time.Time{}
	}
	if st.Review == nil {
		st.Review = map[string]time.Time{}
	}
	if st.Overdue == nil {
		st.Overdue = map[string]time.Time{}
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

func saveGovState(ctx context.Context, s logical.Storage, st *govState) error {
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
	return nil
}

// foldLog folds lifecycle-log entries appended since st.LogSeq into the
// counters and time-to-revoke samples. Its cost is the number of new
// entries, not the size of the log.
func (b *apikeysBackend) foldLog(ctx context.Context, s logical.Storage, st *govState) error {
	head, err := readLogHead(ctx, s)
	if err != nil {
		return err
	}
	if head.Seq < st.LogSeq {
		st.LogSeq = 0 // the log was reset under us; count it again
		st.Events = map[string]uint64{}
		st.PurgedLeasedKeys = 0
	}
	for seq := st.LogSeq + 1; seq <= head.Seq; seq++ {
		rec, err := readLogEntry(ctx, s, seq)
		if err != nil {
			return err
		}
		st.LogSeq = seq
		if rec == nil {
			continue
		}
		var ev Event
		if err := json.Unmarshal(rec.Event, &ev); err != nil {
			continue // an unreadable entry is log/verify's business
		}
		st.foldEvent(ev)
	}
	return nil
}

func (st *govState) foldEvent(ev Event) {
	st.Events[ev.Type]++
	switch ev.Type {
	case eventAlert:
		if ev.KeyID == "" || ev.Details["type"] == alertLeakReported {
			return // leaks measure their own time-to-revoke
		}
		if _, open := st.OpenAlerts[ev.KeyID]; !open && len(st.OpenAlerts) < maxOpenAlerts {
			st.OpenAlerts[ev.KeyID] = ev.Time
		}
	case eventKeyRevoked:
		if at, open := st.OpenAlerts[ev.KeyID]; open {
			st.addTTR(ev.Time.Sub(at).Seconds())
			delete(st.OpenAlerts, ev.KeyID)
		}
	case eventKeysPurged:
		if n, err := strconv.ParseUint(ev.Details["count"], 10, 64); err == nil {
			st.PurgedLeasedKeys += n
		}
	case eventLeak:
		if ms, err := strconv.ParseInt(ev.Details["time_to_revoke_ms"], 10, 64); err == nil {
			st.addTTR(float64(ms) / 1000)
		}
	}
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

// pruneOpenAlerts forgets alerts that no revocation followed for long.
func (st *govState) pruneOpenAlerts(now time.Time) {
	for id, at := range st.OpenAlerts {
		if now.Sub(at) > openAlertMaxAge {
			delete(st.OpenAlerts, id)
		}
	}
}
