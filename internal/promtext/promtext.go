// Package promtext reads a Prometheus text exposition in tests as a flat
// map of samples. Parsing is Prometheus's own (expfmt.TextParser); this
// package only flattens its metric families into "name{labels}" keys so a
// test can look a sample up by the series it would query.
package promtext

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Parse parses text with the Prometheus text parser and returns its
// samples as "name{l1="v1",l2="v2"}" (labels sorted) → value; histogram
// and summary families give their _bucket/quantile, _sum and _count
// samples as Prometheus would store them.
func Parse(text string) (map[string]float64, error) {
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	var dup error
	put := func(name string, labels []*dto.LabelPair, extra [2]string, v float64) {
		key := series(name, labels, extra)
		if _, seen := out[key]; seen && dup == nil {
			dup = fmt.Errorf("duplicate sample %s", key)
		}
		out[key] = v
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			l := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				put(name, l, [2]string{}, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				put(name, l, [2]string{}, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				put(name, l, [2]string{}, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				// The parser keeps the +Inf bucket as a bucket; FormatFloat
				// spells its bound "+Inf", as the exposition does.
				for _, b := range h.GetBucket() {
					put(name+"_bucket", l, [2]string{"le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}, float64(b.GetCumulativeCount()))
				}
				put(name+"_sum", l, [2]string{}, h.GetSampleSum())
				put(name+"_count", l, [2]string{}, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					put(name, l, [2]string{"quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)}, q.GetValue())
				}
				put(name+"_sum", l, [2]string{}, s.GetSampleSum())
				put(name+"_count", l, [2]string{}, float64(s.GetSampleCount()))
			}
		}
	}
	if dup != nil {
		return nil, dup
	}
	return out, nil
}

func series(name string, labels []*dto.LabelPair, extra [2]string) string {
	var pairs []string
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	if extra[0] != "" {
		pairs = append(pairs, extra[0]+"="+strconv.Quote(extra[1]))
	}
	if len(pairs) == 0 {
		return name
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}
