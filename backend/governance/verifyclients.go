package governance

import (
	"slices"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// VerifyByClient counts verify outcomes by client label: client →
// outcome → count. Add and Keep hold it to the clients of the mount's
// metrics_clients plus record.MetricsClientOther and MetricsClientNone, so
// it stays bounded (record.MaxMetricsClients+2 clients).
type VerifyByClient map[string]map[string]uint64

// Add adds n verifies with outcome under client label client. A label
// that is neither a client of listed (the mount's metrics_clients,
// sorted) nor a reserved label is counted as record.MetricsClientOther:
// the list may have changed since the verify was labelled.
func (v *VerifyByClient) Add(listed []string, client, outcome string, n uint64) {
	if !verifyLabelKept(listed, client) {
		client = record.MetricsClientOther
	}
	if *v == nil {
		*v = VerifyByClient{}
	}
	if (*v)[client] == nil {
		(*v)[client] = map[string]uint64{}
	}
	(*v)[client][outcome] += n
}

// Keep folds the counts of clients no longer in listed into
// record.MetricsClientOther, so the map holds at most len(listed)+2
// clients however often the list changes. The folded counts stay in the
// totals: _other's counters only grow.
func (v *VerifyByClient) Keep(listed []string) {
	for client, byOutcome := range *v {
		if verifyLabelKept(listed, client) {
			continue
		}
		delete(*v, client)
		for outcome, n := range byOutcome {
			v.Add(listed, record.MetricsClientOther, outcome, n)
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
