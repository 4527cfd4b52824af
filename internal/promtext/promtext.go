// Package promtext checks Prometheus text exposition output (format
// 0.0.4) in tests, without pulling in the Prometheus client libraries.
package promtext

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	promSampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (\S+)$`)
	promTypeRe   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
	promHelpRe   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$`)
)

// Parse checks the Prometheus text exposition format (0.0.4) line by
// line: HELP/TYPE comments, every sample after its family's TYPE, label
// syntax, float values, and histogram buckets cumulative up to +Inf ==
// _count. It returns the samples as "name{labels}" → value.
func Parse(text string) (map[string]float64, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("exposition does not end with a newline")
	}
	out := map[string]float64{}
	types := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case promTypeRe.MatchString(line):
			m := promTypeRe.FindStringSubmatch(line)
			if _, dup := types[m[1]]; dup {
				return nil, fmt.Errorf("line %d: second TYPE for %s", i+1, m[1])
			}
			types[m[1]] = m[2]
		case promHelpRe.MatchString(line):
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("line %d: bad comment %q", i+1, line)
		default:
			m := promSampleRe.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: not a sample: %q", i+1, line)
			}
			family := m[1]
			if _, ok := types[family]; !ok {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if f := strings.TrimSuffix(m[1], suf); f != m[1] {
						if typ := types[f]; typ == "histogram" || typ == "summary" {
							family = f
						}
					}
				}
			}
			if _, ok := types[family]; !ok {
				return nil, fmt.Errorf("line %d: sample before its TYPE: %q", i+1, line)
			}
			v, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value: %v", i+1, err)
			}
			if _, dup := out[m[1]+m[2]]; dup {
				return nil, fmt.Errorf("line %d: duplicate sample %s%s", i+1, m[1], m[2])
			}
			out[m[1]+m[2]] = v
		}
	}
	for family, typ := range types {
		if typ != "histogram" {
			continue
		}
		if err := checkBuckets(family, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkBuckets checks that a histogram's buckets are cumulative and that
// the +Inf bucket equals _count.
func checkBuckets(family string, samples map[string]float64) error {
	type bucket struct{ le, v float64 }
	var list []bucket
	for name, v := range samples {
		rest, ok := strings.CutPrefix(name, family+`_bucket{le="`)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64) // "+Inf" parses as +Inf
		if err != nil {
			return fmt.Errorf("%s: bad le: %v", name, err)
		}
		list = append(list, bucket{le, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].le < list[j].le })
	for i := 1; i < len(list); i++ {
		if list[i].v < list[i-1].v {
			return fmt.Errorf("%s: buckets not cumulative at le=%v", family, list[i].le)
		}
	}
	if len(list) == 0 || !math.IsInf(list[len(list)-1].le, 1) || list[len(list)-1].v != samples[family+"_count"] {
		return fmt.Errorf("%s: no +Inf bucket equal to _count", family)
	}
	return nil
}

// readFile returns the shared server's audit log.
