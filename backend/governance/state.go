package governance

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// StateKey is the storage entry of the governance state. Every field of
// State is bounded whatever the number of keys (event types and verify
// outcomes are fixed sets, verify client labels at most
// record.MaxMetricsClients+2, samples are capped, open-alert days are bounded
// by the retention, the cursors are two names of at most 64 characters and
// an alert id), so the entry stays a few tens of KiB. Per-key marks live in
// entries of their own (marks.go).
const StateKey = "governance/state"

// State is governance's persisted state: counters folded from the
// lifecycle log, verify outcome totals, recent time-to-revoke samples, open
// alerts by day and type, and the positions of the incremental key sweep
// and of the alert retention. Its fields are the stored JSON.
type State struct {
	// LogSeq is the last lifecycle-log entry folded into the counters.
	LogSeq uint64 `json:"log_seq"`
	// Events counts lifecycle-log entries by type.
	Events map[string]uint64 `json:"events"`
	// Verify counts verify outcomes ("active" or the code) flushed from
	// the nodes' in-memory counters.
	Verify map[string]uint64 `json:"verify"`
	// VerifyByClient counts the same outcomes by client label
	// (verifyclients.go), bounded by the mount's metrics_clients.
	VerifyByClient VerifyByClient `json:"verify_by_client,omitempty"`
	// DroppedAlerts counts detections lost to a full buffer.
	DroppedAlerts uint64 `json:"dropped_alerts"`
	// PurgedLeasedKeys counts leased keys named by keys.purged entries
	// (one entry lists a batch, so Events counts batches, not keys). A key
	// listed again after an interrupted purge pass counts twice.
	PurgedLeasedKeys uint64 `json:"purged_leased_keys"`
	// TTR holds recent time-to-revoke samples, in seconds.
	TTR []float64 `json:"ttr"`
	// Lifespans is the histogram of ended secrets' lifespans
	// (lifespan.go).
	Lifespans *Lifespans `json:"lifespans,omitempty"`
	// Sweep is the last key the incremental sweep visited (zero: the next
	// tick starts a new pass). Persisted so that a new active node carries
	// on where the previous one stopped instead of restarting the pass.
	Sweep Cursor `json:"sweep,omitzero"`
	// Keys are the key stats of the last complete sweep pass, KeysPass
	// those of the pass under way up to Sweep (keystats.go).
	Keys     *KeyStats `json:"key_stats,omitempty"`
	KeysPass *KeyStats `json:"key_stats_pass,omitempty"`
	// OpenAlerts counts unacknowledged alerts by UTC day raised and type
	// (openalerts.go), once OpenAlertsCounted.
	OpenAlerts        map[string]map[string]int `json:"open_alert_days,omitempty"`
	OpenAlertsCounted bool                      `json:"open_alerts_counted,omitempty"`
	// AlertPrune is the last alert the retention examined for being
	// acknowledged (retention.go).
	AlertPrune string `json:"alert_prune,omitempty"`

	// marks are the per-key marks, read through and written back by save.
	marks *markStore
	// loaded is the encoding as loaded, to skip writing an unchanged state.
	loaded []byte
}

func load(ctx context.Context, s logical.Storage) (*State, error) {
	st := &State{marks: newMarkStore(s)}
	entry, err := s.Get(ctx, StateKey)
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
		// save is between two encodings of the same code.
		if enc, err := logical.StorageEntryJSON(StateKey, st); err == nil {
			st.loaded = enc.Value
		}
	}
	return st, nil
}

// save writes the changed marks, then the state. Marks go first so that a
// migration stores them before the state stops holding them.
func (st *State) save(ctx context.Context, s logical.Storage) error {
	if err := st.marks.flush(ctx); err != nil {
		return err
	}
	entry, err := logical.StorageEntryJSON(StateKey, st)
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
