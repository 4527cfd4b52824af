package notify

import (
	"strings"
	"testing"
)

func TestValidPattern(t *testing.T) {
	for _, p := range []string{"*", "key.revoked", "alert.*", "alert.verify_burst", "a-b.c_d.9", "a", strings.Repeat("a", 128)} {
		if err := ValidPattern(p); err != nil {
			t.Errorf("ValidPattern(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", ".*", "**", "alert*", "alert.**", "*.revoked", "alert.*.x", "Key.revoked", "key..revoked", ".key", "key.", "key revoked", "ключ", "a.*.*", strings.Repeat("a", 129)} {
		if err := ValidPattern(p); err == nil {
			t.Errorf("ValidPattern(%q) = nil, want an error", p)
		}
	}
}

func TestMatchType(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"*"}, "key.revoked", true},
		{[]string{"key.revoked"}, "key.revoked", true},
		{[]string{"key.revoked"}, "key.revoked_early", false},
		{[]string{"key.revoked"}, "key", false},
		{[]string{"alert.*"}, "alert.verify_burst", true},
		{[]string{"alert.*"}, "alert.verify_burst.x", true},
		{[]string{"alert.*"}, "alert", false},
		{[]string{"alert.*"}, "alert.", false},
		{[]string{"alert.*"}, "alerts.x", false},
		{[]string{"key.revoked", "alert.*"}, "alert.x", true},
		{[]string{"key.revoked", "alert.*"}, "key.issued", false},
		{nil, "key.revoked", false},
		{[]string{}, "", false},
	} {
		if got := MatchType(tc.patterns, tc.typ); got != tc.want {
			t.Errorf("MatchType(%q, %q) = %v, want %v", tc.patterns, tc.typ, got, tc.want)
		}
	}
}

func TestSeverityAtLeast(t *testing.T) {
	for _, tc := range []struct {
		min, sev string
		want     bool
	}{
		{"", "info", true},
		{"", "", true},
		{"info", "info", true},
		{"info", "critical", true},
		{"warning", "info", false},
		{"warning", "warning", true},
		{"warning", "critical", true},
		{"critical", "warning", false},
		{"critical", "critical", true},
		{"warning", "", false},
		{"warning", "fatal", false},
		{"fatal", "critical", false},
	} {
		if got := SeverityAtLeast(tc.min, tc.sev); got != tc.want {
			t.Errorf("SeverityAtLeast(%q, %q) = %v, want %v", tc.min, tc.sev, got, tc.want)
		}
	}
	for _, s := range []string{"", "info", "warning", "critical"} {
		if err := ValidSeverity(s); err != nil {
			t.Errorf("ValidSeverity(%q) = %v", s, err)
		}
	}
	if ValidSeverity("Critical") == nil {
		t.Error(`ValidSeverity("Critical") = nil`)
	}
}
