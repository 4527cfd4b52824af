package detect

import (
	"slices"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Thresholds are the alert settings Observe runs with: the window the
// counters cover and the counts within it above which an alert is raised.
type Thresholds struct {
	window       time.Duration
	burst        int
	failedVerify int
	// metricsClients (sorted) get their own client label in the verify
	// counts; see record.Config.MetricsClients.
	metricsClients []string
}

// ThresholdsOf reads the alert settings of a mount config. A nil config
// (nothing loaded the config on this node yet) gives the defaults, so the
// hot path never has to read storage for them.
func ThresholdsOf(cfg *record.Config) Thresholds {
	if cfg == nil {
		return defaultThresholds
	}
	return thresholdsOf(cfg)
}

// defaultThresholds are computed once: building a default config allocates,
// and until a node loads the config every verify would pay for it.
var defaultThresholds = thresholdsOf(record.DefaultConfig())

func thresholdsOf(cfg *record.Config) Thresholds {
	return Thresholds{window: cfg.AlertWindow, burst: cfg.VerifyBurstThreshold, failedVerify: cfg.FailedVerifyThreshold, metricsClients: cfg.MetricsClients}
}

// clientLabel is the client label a verify answer is counted under: the
// key's client if metrics_clients names it, else MetricsClientOther, or
// MetricsClientNone if the answer matched no key. Bounded by
// record.MaxMetricsClients+2 values whatever the number of clients.
func (th Thresholds) clientLabel(k *record.Key) string {
	if k == nil || k.Client == "" {
		return record.MetricsClientNone
	}
	if _, listed := slices.BinarySearch(th.metricsClients, k.Client); listed {
		return k.Client
	}
	return record.MetricsClientOther
}
