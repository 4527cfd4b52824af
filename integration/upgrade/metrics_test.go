package upgrade

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricsValues flattens the JSON metrics into path -> value, numbers and
// durations as float64 seconds, so two builds that render a duration
// differently (a Go duration string or integer seconds) compare by value.
func metricsValues(t *testing.T, m string) map[string]interface{} {
	t.Helper()
	out := map[string]interface{}{}
	flatten("", read(t, m+"/metrics").Data, out)
	return out
}

func flatten(prefix string, v interface{}, out map[string]interface{}) {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			flatten(join(prefix, k), e, out)
		}
	case []interface{}:
		for i, e := range x {
			// Histogram buckets are named by their bound, not their position.
			if b, ok := e.(map[string]interface{}); ok && b["le_seconds"] != nil {
				flatten(join(prefix, "le="+fmt.Sprint(b["le_seconds"])), b["count"], out)
				continue
			}
			flatten(join(prefix, strconv.Itoa(i)), e, out)
		}
	case json.Number:
		f, _ := x.Float64()
		out[prefix] = f
	case string:
		if d, err := time.ParseDuration(x); err == nil {
			out[prefix] = d.Seconds()
		} else {
			out[prefix] = x
		}
	default:
		out[prefix] = x
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// timeDependent metrics change as the clock runs (the sum of key ages) and
// are not compared.
func timeDependent(path string) bool {
	return path == "key_age.sum_seconds"
}

// metricsDiff lists the metrics that differ between before and after,
// field by field; a metric only one build reports is listed too, unless
// it is new in after (a metric the new build added).
func metricsDiff(before, after map[string]interface{}) []string {
	var diffs []string
	for k, b := range before {
		if timeDependent(k) {
			continue
		}
		a, ok := after[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %v before, missing after", k, b))
			continue
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			diffs = append(diffs, fmt.Sprintf("%s: %v before, %v after", k, b, a))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func TestMetricsFlattenComparesDurationsByValue(t *testing.T) {
	a, b := map[string]interface{}{}, map[string]interface{}{}
	flatten("", map[string]interface{}{"p50": "1m30s", "n": json.Number("3"), "key_age": map[string]interface{}{"sum_seconds": json.Number("1")}}, a)
	flatten("", map[string]interface{}{"p50": json.Number("90"), "n": json.Number("3.0"), "extra": "x", "key_age": map[string]interface{}{"sum_seconds": json.Number("2")}}, b)
	if d := metricsDiff(a, b); len(d) != 0 {
		t.Fatalf("equal values reported as different: %s", strings.Join(d, "; "))
	}
	b["n"] = 4.0
	if d := metricsDiff(a, b); len(d) != 1 {
		t.Fatalf("a changed count not reported: %v", d)
	}
}
