package governance

import "time"

// KeyStats are the metrics of the keys themselves (counts by state,
// rotation coverage, overdue keys, the age of the secrets in use), gathered
// by the sweep as it visits each key, so a metrics read costs the same at
// any number of keys. They move with the clock as much as with changes (a
// key expires, falls overdue or ages without any write, and a client lock
// or a role's policy changes many keys at once), so they are not kept
// current change by change: one pass counts every key it visits into
// State.KeysPass, and the pass's end publishes the total as State.Keys,
// stamped with when the pass ended. A pass over a mount of up to
// DefaultSweepQuota keys is one tick.
type KeyStats struct {
	ByState map[string]int `json:"by_state"`
	Leased  int            `json:"leased"`
	// Managed keys are non-leased keys that verify could accept (active,
	// pending or locked); Covered are those rotated within their role's
	// policy, Overdue those past their next rotation.
	Managed int `json:"managed"`
	Covered int `json:"covered"`
	Overdue int `json:"overdue"`
	// AgeCount is the cumulative count per age bound of the caller's
	// histogram; AgeTotal and AgeSum cover every key counted by age.
	AgeCount []int   `json:"age_count"`
	AgeTotal int     `json:"age_total"`
	AgeSum   float64 `json:"age_sum"`
	// FromStart is set when the gathering began with the pass, so its
	// total at the pass's end covers every key (a state written by a
	// version without KeyStats resumes mid-pass, and that pass publishes
	// nothing).
	FromStart bool `json:"from_start,omitempty"`
	// At is when the pass that counted them ended; zero while gathering.
	At time.Time `json:"at,omitzero"`
}

func newKeyStats(fromStart bool) *KeyStats {
	return &KeyStats{ByState: map[string]int{}, FromStart: fromStart}
}

// beginKeyPass makes sure st gathers key stats for the pass the cursor is
// in: a pass starting now gathers from zero.
func (st *State) beginKeyPass() {
	if st.Sweep.atStart() || st.KeysPass == nil {
		st.KeysPass = newKeyStats(st.Sweep.atStart())
	}
}

// endKeyPass publishes what the pass that just ended gathered, if it
// gathered from the pass's start, and starts the next pass's.
func (st *State) endKeyPass(now time.Time) {
	if p := st.KeysPass; p != nil && p.FromStart {
		p.At = now
		st.Keys = p
	}
	st.KeysPass = newKeyStats(true)
}

// Total is the number of keys counted.
func (ks *KeyStats) Total() int {
	n := 0
	for _, c := range ks.ByState {
		n += c
	}
	return n
}
