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

// Metrics (SPEC §7) computed on demand from the persisted governance state
// (the key stats of the sweep's last pass, and the lifecycle log folded in
// up to its head, which holds the event and open-alert counts) plus this
// node's verify counts not yet flushed: a read costs the same at any number
// of keys. Labels carry only states, codes, event and alert types: never
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
	// Lifespans of ended secrets (governance.LifespanBounds), folded
	// from the log.
	Lifespans governance.Lifespans
	Events    map[string]uint64
	// Purged counts leased keys purged after their retention.
	Purged uint64
	Verify map[string]uint64
	// VerifyByClient counts verify outcomes by client label (client →
	// outcome): the mount's metrics_clients and the two reserved labels.
	VerifyByClient governance.VerifyByClient
	Open           map[string]int // unacknowledged alerts by type
	Dropped        uint64
	// KeysAsOf is when the key metrics (KeysByState through AgeSum) were
	// counted: the end of the sweep's last pass, or now for a live count;
	// zero if the mount is too large to count live and no pass has ended
	// yet (the key metrics are then zero).
	KeysAsOf time.Time
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

// liveKeyMetricsMax is the most keys a metrics read counts itself. A mount
// the sweep's last pass found this small (or one no pass has ended on yet:
// a new mount, or the first ticks after an upgrade to a version that
// gathers key stats) is counted at the read, so its key metrics are exact
// at once; if it turns out to hold more, the read stops one key past the
// bound and reports the last pass's, if any. A larger mount reports the
// last pass's without reading a key.
const liveKeyMetricsMax = 1000

// collectMetrics computes the snapshot. It does not write storage, and
// reads at most liveKeyMetricsMax+1 keys, none on a mount the sweep's last
// pass found larger, or that an earlier read found larger before any pass
// ended: the key metrics are then those that pass gathered
// (governance.KeyStats).
func (b *apikeysBackend) collectMetrics(ctx context.Context, s logical.Storage) (*metricsSnapshot, error) {
	now := b.clock.Now()
	st, err := b.gov.Snapshot(ctx, s)
	if err != nil {
		return nil, err
	}
	keys, asOf := st.Keys, time.Time{}
	if keys != nil {
		asOf = keys.At
	}
	// Before the first pass, a mount once found over the bound is not
	// counted again: every scrape would read liveKeyMetricsMax+1 keys
	// until the pass ends (minutes, on a large mount).
	if (keys == nil && !b.overLiveMax.Load()) || (keys != nil && keys.Total() <= b.liveKeyMetricsMax) {
		live, err := b.countKeysLive(ctx, s, now)
		if err != nil {
			return nil, err
		}
		if live != nil {
			keys, asOf = live, now
		}
		b.overLiveMax.Store(live == nil && st.Keys == nil)
	}
	m := &metricsSnapshot{KeysByState: map[string]int{}, AgeCount: make([]int, len(ageBounds)), Open: map[string]int{}, KeysAsOf: asOf}
	for _, state := range keyStates {
		m.KeysByState[state] = 0
	}
	if keys != nil {
		for state, n := range keys.ByState {
			m.KeysByState[state] += n
		}
		m.Leased, m.Managed, m.Covered, m.Overdue = keys.Leased, keys.Managed, keys.Covered, keys.Overdue
		copy(m.AgeCount, keys.AgeCount)
		m.AgeTotal, m.AgeSum = keys.AgeTotal, keys.AgeSum
	}
	m.Events, m.Verify, m.Dropped, m.Purged = st.Events, st.Verify, st.DroppedAlerts, st.PurgedLeasedKeys
	for k, v := range b.gov.det.PeekOutcomes() {
		m.Verify[k] += v
	}
	for _, o := range record.Outcomes {
		m.Verify[o.Code] += 0
	}
	// Stored and not yet flushed counts, labelled as the flush would
	// label them under the current metrics_clients.
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	m.VerifyByClient = governance.VerifyByClient{}
	for client, byOutcome := range st.VerifyByClient {
		for outcome, n := range byOutcome {
			m.VerifyByClient.Add(cfg.MetricsClients, client, outcome, n)
		}
	}
	for k, n := range b.gov.det.PeekClientOutcomes() {
		m.VerifyByClient.Add(cfg.MetricsClients, k.Client, k.Outcome, n)
	}
	m.Lifespans = governance.Lifespans{Count: make([]uint64, len(governance.LifespanBounds))}
	if l := st.Lifespans; l != nil && len(l.Count) == len(governance.LifespanBounds) {
		copy(m.Lifespans.Count, l.Count)
		m.Lifespans.Total, m.Lifespans.Sum = l.Total, l.Sum
	}
	m.TTR = append([]float64(nil), st.TTR...)
	sort.Float64s(m.TTR)
	// Folded from the log: a scrape reads no alert.
	m.Open = st.OpenAlertsByType(now)
	return m, nil
}

// countKeysLive counts the mount's keys as of now if there are at most
// liveKeyMetricsMax of them, and returns nil if there are more (or the
// bound is negative: never).
func (b *apikeysBackend) countKeysLive(ctx context.Context, s logical.Storage, now time.Time) (*governance.KeyStats, error) {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	ks := &governance.KeyStats{ByState: map[string]int{}}
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, s, name) })
	roleOf := memoByName(func(name string) (*record.Role, error) { return b.getRole(ctx, s, name) })
	if b.liveKeyMetricsMax < 0 {
		return nil, nil
	}
	seen, tooMany := 0, false
	err = b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		if seen++; seen > b.liveKeyMetricsMax {
			tooMany = true
			return false, nil
		}
		return true, countKey(ks, cfg, now, k, clientOf, roleOf)
	})
	if err != nil || tooMany {
		return nil, err
	}
	return ks, nil
}

// countKey adds key k, as it stands at now, to ks: the one definition of
// the key metrics, for the sweep's passes and the live count alike.
func countKey(ks *governance.KeyStats, cfg *record.Config, now time.Time, k *record.Key, clientOf func(string) (*record.Client, error), roleOf func(string) (*record.Role, error)) error {
	c, err := clientOf(k.Client)
	if err != nil {
		return err
	}
	r, err := roleOf(k.Role)
	if err != nil {
		return err
	}
	if ks.ByState == nil {
		ks.ByState = map[string]int{}
	}
	for len(ks.AgeCount) < len(ageBounds) {
		ks.AgeCount = append(ks.AgeCount, 0)
	}
	state := k.State(now)
	if c != nil && c.Status == record.ClientLocked && state == record.StateActive {
		state = record.StateLocked
	}
	ks.ByState[state]++
	if k.Leased {
		ks.Leased++
	}
	if state != record.StateActive && state != record.StatePending && state != record.StateLocked {
		return nil
	}
	// Age of the secret in use: since its current version was created.
	born := k.CreatedAt
	if cur := k.Current(); cur != nil {
		born = cur.CreatedAt
	}
	age := now.Sub(born)
	ks.AgeTotal++
	ks.AgeSum += age.Seconds()
	for i, bound := range ageBounds {
		if age <= bound {
			ks.AgeCount[i]++
		}
	}
	if k.Leased || r == nil {
		return nil
	}
	ks.Managed++
	last := k.LastRotatedAt
	if last.IsZero() {
		last = k.CreatedAt
	}
	if !governance.RotationOverdue(r.RotationPolicy(cfg).Next(last), now) {
		ks.Covered++
	}
	if governance.RotationOverdue(k.NextRotationAt, now) {
		ks.Overdue++
	}
	return nil
}
