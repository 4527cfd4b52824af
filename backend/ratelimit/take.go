package ratelimit

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Budget is one limit a verify draws from: a key's own (by key_id), or one
// shared by every key of a client (ClientBudget, RestrictionBudget).
type Budget struct {
	ID     string
	Limit  int // > 0
	Window time.Duration
}

// ClientBudget is the id of the budget every key of a client shares.
func ClientBudget(client string) string { return "client/" + client }

// RestrictionBudget is the id of the budget of a client's temporary
// restriction: apart from ClientBudget so lifting the restriction leaves
// the client's own count intact.
func RestrictionBudget(client string) string { return "restriction/" + client }

// Take counts one verify against every budget, or against none of them when
// any is used up: a verify refused by the client's budget must not spend
// the key's. It returns the state of the tightest budget (fewest remaining)
// and, when refused, how long until every used-up budget has a new window.
func (r *Limiter) Take(budgets []Budget, now time.Time) (state record.RateState, retryAfter time.Duration, ok bool) {
	if len(budgets) == 0 {
		return record.RateState{}, 0, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ok = true
	for _, bu := range budgets {
		w := r.windows[bu.ID]
		if w == nil {
			w = &window{}
			r.windows[bu.ID] = w
		}
		if !now.Before(w.ends) {
			w.ends, w.count = now.Add(bu.Window), 0
		}
		if w.count >= bu.Limit {
			ok = false
			if d := w.ends.Sub(now); d > retryAfter {
				retryAfter = d
			}
		}
	}
	for i, bu := range budgets {
		w := r.windows[bu.ID]
		if ok {
			w.count++
		}
		rem := max(bu.Limit-w.count, 0)
		if i == 0 || rem < state.Remaining || (rem == state.Remaining && w.ends.After(state.Reset)) {
			state = record.RateState{Limit: bu.Limit, Remaining: rem, Reset: w.ends}
		}
	}
	if ok {
		retryAfter = 0
	}
	return state, retryAfter, ok
}
