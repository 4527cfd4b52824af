package backend

import (
	"bytes"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
)

// prometheusTextFormat is the content type of the exposition: the text
// format (0.0.4) as the Prometheus library names it.
var prometheusTextFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// The snapshot is rendered by the Prometheus libraries (client_model's
// metric families, written by expfmt) rather than by hand, so escaping,
// float formatting and the histogram/summary layout are Prometheus's own.
// The metric names and label sets are a user contract (alerting rules and
// the Grafana dashboard in bootstrap/ query them).

type promFamilies []*dto.MetricFamily

func (fs *promFamilies) add(name, help string, typ dto.MetricType, metrics ...*dto.Metric) {
	if len(metrics) == 0 {
		// A family without series (verify counts by client before the
		// first verify) is left out, as client_golang leaves out an empty
		// vector: expfmt refuses to write one.
		return
	}
	*fs = append(*fs, &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum(), Metric: metrics})
}

func promLabels(pairs ...string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, &dto.LabelPair{Name: proto.String(pairs[i]), Value: proto.String(pairs[i+1])})
	}
	return out
}

func promGauge(v float64, labels ...string) *dto.Metric {
	return &dto.Metric{Label: promLabels(labels...), Gauge: &dto.Gauge{Value: proto.Float64(v)}}
}

func promCounter(v float64, labels ...string) *dto.Metric {
	return &dto.Metric{Label: promLabels(labels...), Counter: &dto.Counter{Value: proto.Float64(v)}}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// promByLabel is one sample per map entry, labelled label=key, in key order.
func promByLabel[V int | uint64](m map[string]V, label string, sample func(float64, ...string) *dto.Metric) []*dto.Metric {
	keys := sortedKeys(m)
	out := make([]*dto.Metric, 0, len(keys))
	for _, k := range keys {
		out = append(out, sample(float64(m[k]), label, k))
	}
	return out
}

func (m *metricsSnapshot) families() promFamilies {
	var fs promFamilies
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	fs.add("apikeys_keys", "Keys by state (locked: active keys of a locked client).", gauge, promByLabel(m.KeysByState, "state", promGauge)...)
	fs.add("apikeys_key_metrics_timestamp_seconds", "When the key metrics (keys by state, coverage, overdue, age) were counted: the end of the governance sweep's last pass (0: not yet).", gauge, promGauge(m.keysAsOfUnix()))
	fs.add("apikeys_leased_keys", "Leased keys (any state).", gauge, promGauge(float64(m.Leased)))
	fs.add("apikeys_managed_keys", "Managed (non-leased) keys that verify could accept.", gauge, promGauge(float64(m.Managed)))
	fs.add("apikeys_rotation_coverage_ratio", "Share of managed keys rotated within their rotation policy.", gauge, promGauge(m.coverage()))
	fs.add("apikeys_keys_overdue", "Managed keys overdue for rotation.", gauge, promGauge(float64(m.Overdue)))
	fs.add("apikeys_key_age_seconds", "Age of the secrets in use (since their current version was created).", dto.MetricType_HISTOGRAM, m.ageHistogram())
	fs.add("apikeys_key_lifespan_seconds", "How long ended secrets stayed valid: from their version's creation to its retirement, revocation or expiry.", dto.MetricType_HISTOGRAM, m.lifespanHistogram())
	fs.add("apikeys_time_to_revoke_seconds", "Time from an alert or leak report to the key's revocation (last 1000).", dto.MetricType_SUMMARY, m.ttrSummary())
	fs.add("apikeys_lifecycle_events_total", "Lifecycle-log events by type (key.issued, key.rotated, key.revoked, ...).", counter, promByLabel(m.Events, "type", promCounter)...)
	fs.add("apikeys_leased_keys_purged_total", "Dead leased keys purged after leased_key_retention (their history stays in the lifecycle log).", counter, promCounter(float64(m.Purged)))
	fs.add("apikeys_verify_total", "Verify outcomes: active, or the code of an inactive answer.", counter, promByLabel(m.Verify, "outcome", promCounter)...)
	fs.add("apikeys_verify_by_client_total", "Verify outcomes by client: the clients of the mount's metrics_clients by name, every other client as _other, answers that matched no key as _none.", counter, m.verifyByClient()...)
	fs.add("apikeys_alerts_open", "Unacknowledged alerts by type.", gauge, promByLabel(m.Open, "type", promGauge)...)
	fs.add("apikeys_alerts_dropped_total", "Alert detections dropped because the buffer was full.", counter, promCounter(float64(m.Dropped)))
	return fs
}

func (m *metricsSnapshot) verifyByClient() []*dto.Metric {
	var out []*dto.Metric
	for _, client := range sortedKeys(m.VerifyByClient) {
		byOutcome := m.VerifyByClient[client]
		for _, outcome := range sortedKeys(byOutcome) {
			out = append(out, promCounter(float64(byOutcome[outcome]), "client", client, "outcome", outcome))
		}
	}
	return out
}

func (m *metricsSnapshot) ageHistogram() *dto.Metric {
	h := &dto.Histogram{SampleCount: proto.Uint64(uint64(m.AgeTotal)), SampleSum: proto.Float64(m.AgeSum)}
	for i, bound := range ageBounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(bound.Seconds()), CumulativeCount: proto.Uint64(uint64(m.AgeCount[i]))})
	}
	return &dto.Metric{Histogram: h}
}

func (m *metricsSnapshot) lifespanHistogram() *dto.Metric {
	l := m.Lifespans
	h := &dto.Histogram{SampleCount: proto.Uint64(l.Total), SampleSum: proto.Float64(l.Sum)}
	for i, bound := range governance.LifespanBounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(bound.Seconds()), CumulativeCount: proto.Uint64(l.Count[i])})
	}
	return &dto.Metric{Histogram: h}
}

func (m *metricsSnapshot) ttrSummary() *dto.Metric {
	s := &dto.Summary{SampleCount: proto.Uint64(uint64(len(m.TTR))), SampleSum: proto.Float64(sum(m.TTR))}
	for _, q := range []float64{0.5, 0.95} {
		s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(quantile(m.TTR, q))})
	}
	return &dto.Metric{Summary: s}
}

// prometheus renders the snapshot in the Prometheus text format.
func (m *metricsSnapshot) prometheus() ([]byte, error) {
	var buf bytes.Buffer
	for _, f := range m.families() {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
