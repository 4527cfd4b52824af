package governance

import (
	"slices"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// CountVerifyByClient adds n verifies with outcome under client label
// client. A label that is neither a client of listed (the mount's
// metrics_clients, sorted) nor one of the reserved labels is counted as
// record.MetricsClientOther: the list may have shrunk since the verify.
func (st *State) CountVerifyByClient(listed []string, client, outcome string, n uint64) {
	if !verifyLabelKept(listed, client) {
		client = record.MetricsClientOther
	}
	if st.VerifyByClient == nil {
		st.VerifyByClient = map[string]map[string]uint64{}
	}
	if st.VerifyByClient[client] == nil {
		st.VerifyByClient[client] = map[string]uint64{}
	}
	st.VerifyByClient[client][outcome] += n
}

// KeepVerifyClients folds the counts of clients no longer in listed into
// record.MetricsClientOther, so VerifyByClient holds at most
// len(listed)+2 clients however often the list changes. The folded
// counts stay in the totals: _other's counters only grow.
func (st *State) KeepVerifyClients(listed []string) {
	for client, byOutcome := range st.VerifyByClient {
		if verifyLabelKept(listed, client) {
			continue
		}
		delete(st.VerifyByClient, client)
		for outcome, n := range byOutcome {
			st.CountVerifyByClient(listed, record.MetricsClientOther, outcome, n)
		}
	}
}

func verifyLabelKept(listed []string, client string) bool {
	if client == record.MetricsClientOther || client == record.MetricsClientNone {
		return true
	}
	_, ok := slices.BinarySearch(listed, client)
	return ok
}
