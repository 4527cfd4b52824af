package backend

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Metrics (SPEC §7) computed on demand from storage (keys, the persisted
// governance state with the lifecycle log folded in up to its head, which
// holds the open-alert counts) plus this node's verify counts not yet
// flushed. Labels carry only states, codes, event and alert types: never
// key material or key names.

// ageBounds are the upper bounds of the key age histogram.
var ageBounds = []time.Duration{record.Day, 7 * record.Day, 30 * record.Day, 90 * record.Day, 180 * record.Day, 365 * record.Day}

// keyStates are reported even when zero.
var keyStates = []string{record.StateActive, record.StatePending, record.StateLocked, record.StateExpired, record.StateRetired, record.StateRevoked}

type metricsSnapshot struct {
	KeysByState map[string]int
	Leased      int
	// Managed keys are non-leased keys that verify could accept (active,
	// pending or locked); rotation coverage and overdue count them.
	Managed  int
	Covered  int
	Overdue  int
	AgeCount []int // cumulative count per ageBounds entry
	AgeTotal int
	AgeSum   float64
	TTR      []float64 // sorted, seconds
	Events   map[string]uint64
	// Purged counts leased keys purged after their retention.
	Purged  uint64
	Verify  map[string]uint64
	Open    map[string]int // unacknowledged alerts by type
	Dropped uint64
}

func (m *metricsSnapshot) coverage() float64 {
	if m.Managed == 0 {
		return 1
	}
	return float64(m.Covered) / float64(m.Managed)
}

// quantile is the nearest-rank quantile of the sorted samples (0 if none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// collectMetrics computes the snapshot. It does not write storage.
func (b *apikeysBackend) collectMetrics(ctx context.Context, s logical.Storage) (*metricsSnapshot, error) {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	m := &metricsSnapshot{KeysByState: map[string]int{}, AgeCount: make([]int, len(ageBounds)), Open: map[string]int{}}
	for _, st := range keyStates {
		m.KeysByState[st] = 0
	}
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, s, name) })
	roleOf := memoByName(func(name string) (*record.Role, error) { return b.getRole(ctx, s, name) })
	err = b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		c, err := clientOf(k.Client)
		if err != nil {
			return false, err
		}
		r, err := roleOf(k.Role)
		if err != nil {
			return false, err
		}
		state := k.State(now)
		if c != nil && c.Status == record.ClientLocked && state == record.StateActive {
			state = record.StateLocked
		}
		m.KeysByState[state]++
		if k.Leased {
			m.Leased++
		}
		if state != record.StateActive && state != record.StatePending && state != record.StateLocked {
			return true, nil
		}
		// Age of the secret in use: since its current version was created.
		born := k.CreatedAt
		if cur := k.Current(); cur != nil {
			born = cur.CreatedAt
		}
		age := now.Sub(born)
		m.AgeTotal++
		m.AgeSum += age.Seconds()
		for i, bound := range ageBounds {
			if age <= bound {
				m.AgeCount[i]++
			}
		}
		if k.Leased || r == nil {
			return true, nil
		}
		m.Managed++
		last := k.LastRotatedAt
		if last.IsZero() {
			last = k.CreatedAt
		}
		if !governance.RotationOverdue(r.RotationPolicy(cfg).Next(last), now) {
			m.Covered++
		}
		if governance.RotationOverdue(k.NextRotationAt, now) {
			m.Overdue++
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	st, err := b.gov.Snapshot(ctx, s)
	if err != nil {
		return nil, err
	}
	m.Events, m.Verify, m.Dropped, m.Purged = st.Events, st.Verify, st.DroppedAlerts, st.PurgedLeasedKeys
	for k, v := range b.gov.det.PeekOutcomes() {
		m.Verify[k] += v
	}
	for _, o := range record.Outcomes {
		m.Verify[o.Code] += 0
	}
	m.TTR = append([]float64(nil), st.TTR...)
	sort.Float64s(m.TTR)
	// Folded from the log: a scrape reads no alert.
	m.Open = st.OpenAlertsByType(now)
	return m, nil
}
