package usage

import (
	"fmt"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var testStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// loadKey is a key that other traffic verifies.
func loadKey(i int) *record.Key {
	return &record.Key{KeyID: fmt.Sprintf("kid_load%07d", i), Client: "load", Name: fmt.Sprint(i)}
}

// BenchmarkUsageRecord measures verify's usage recording: a key with an
// entry, and keys that find the buffer full (spilled, then lost).
func BenchmarkUsageRecord(b *testing.B) {
	now := testStart
	b.Run("entry", func(b *testing.B) {
		u := NewTracker()
		k := loadKey(0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.Record(k, 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
	full := func(spill int) *Tracker {
		u := NewTracker()
		u.SetCapacity(1, spill)
		u.Record(loadKey(-1), 1, record.OutcomeActive, "", now)
		return u
	}
	keys := make([]*record.Key, 1000)
	for i := range keys {
		keys[i] = loadKey(i)
	}
	b.Run("spilled", func(b *testing.B) {
		u := full(len(keys))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.Record(keys[i%len(keys)], 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
	b.Run("lost", func(b *testing.B) {
		u := full(0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u.Record(keys[i%len(keys)], 1, record.OutcomeActive, "192.0.2.1", now)
		}
	})
}
