package notify

import (
	"errors"
	"strings"
)

// maxPatternLen bounds one event-type pattern.
const maxPatternLen = 128

// ValidPattern reports whether p is an event-type pattern: "*" (every
// type), an exact type such as "key.revoked", or a prefix wildcard such as
// "alert.*". A type is dot-separated non-empty segments of lower-case
// letters, digits, '_' and '-'. Errors do not repeat the pattern.
func ValidPattern(p string) error {
	if p == "*" {
		return nil
	}
	if p == "" {
		return errors.New("event type pattern is empty")
	}
	if len(p) > maxPatternLen {
		return errors.New("event type pattern is longer than 128 characters")
	}
	body := strings.TrimSuffix(p, ".*")
	for _, seg := range strings.Split(body, ".") {
		if seg == "" {
			return errors.New(`event type pattern has an empty segment (use "*", "a.b" or "a.*")`)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return errors.New(`event type pattern may hold only a-z, 0-9, '_', '-', '.' and a trailing ".*" (or be "*")`)
			}
		}
	}
	return nil
}

// MatchType reports whether eventType matches any of patterns. A prefix
// wildcard "a.*" matches "a.b" and "a.b.c" but not "a" itself. No patterns
// match nothing: callers wanting every type say "*".
func MatchType(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if matchOne(p, eventType) {
			return true
		}
	}
	return false
}

func matchOne(p, eventType string) bool {
	if p == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") {
		return len(eventType) > len(prefix) && strings.HasPrefix(eventType, prefix)
	}
	return p == eventType
}

// severityRank orders alert severities, the same names as record's
// SeverityInfo, SeverityWarning and SeverityCritical.
var severityRank = map[string]int{"info": 0, "warning": 1, "critical": 2}

// ValidSeverity reports whether s is a severity a minimum may name; ""
// means no minimum.
func ValidSeverity(s string) error {
	if _, ok := severityRank[s]; ok || s == "" {
		return nil
	}
	return errors.New(`severity must be "info", "warning" or "critical"`)
}

// SeverityAtLeast reports whether sev is at least min in the order info <
// warning < critical. An empty min filters nothing; an unknown sev or min
// never passes a filter.
func SeverityAtLeast(min, sev string) bool {
	if min == "" {
		return true
	}
	m, ok1 := severityRank[min]
	s, ok2 := severityRank[sev]
	return ok1 && ok2 && s >= m
}
