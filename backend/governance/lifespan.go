package governance

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// Key lifespans: how long each secret stayed valid, from its version's
// creation to the entry that ended it (key.retired at the end of a grace
// period, key.revoked, key.expired), folded from the lifecycle log like
// the other counters, so a scrape reads no key. The entry names when the
// version was created (DetailVersionCreated, set by the backend's commit);
// entries written before that detail existed are counted as events only.
// Unlike the key-age histogram, which the sweep recounts every pass, this
// one only grows: a Prometheus histogram of ended secrets.

// DetailVersionCreated is the detail of an ending entry that holds when the
// version it ends was created (RFC 3339).
const DetailVersionCreated = "version_created_at"

// LifespanBounds are the upper bounds of the lifespan histogram: leased
// and exchanged keys live minutes to days, managed keys weeks to years.
var LifespanBounds = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour, 180 * 24 * time.Hour, 365 * 24 * time.Hour}

// Lifespans is the histogram: Count[i] counts lifespans at most
// LifespanBounds[i] (cumulative, as Prometheus's buckets), Total all of
// them, Sum their seconds.
type Lifespans struct {
	Count []uint64 `json:"count"`
	Total uint64   `json:"total"`
	Sum   float64  `json:"sum"`
}

// EndsAVersion reports whether entries of type typ end a secret's life.
func EndsAVersion(typ string) bool {
	return typ == eventlog.KeyRetired || typ == eventlog.KeyRevoked || typ == eventlog.KeyExpired
}

func (st *State) foldLifespan(ev eventlog.Event) {
	if !EndsAVersion(ev.Type) {
		return
	}
	created, err := time.Parse(time.RFC3339, ev.Details[DetailVersionCreated])
	if err != nil {
		return
	}
	d := max(ev.Time.Sub(created), 0)
	if st.Lifespans == nil || len(st.Lifespans.Count) != len(LifespanBounds) {
		st.Lifespans = &Lifespans{Count: make([]uint64, len(LifespanBounds))}
	}
	for i, bound := range LifespanBounds {
		if d <= bound {
			st.Lifespans.Count[i]++
		}
	}
	st.Lifespans.Total++
	st.Lifespans.Sum += d.Seconds()
}
