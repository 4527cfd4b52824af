package ha

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRotationProblem shows the check TestRotationAfterFailover relies on
// catches what it must: a scheduled time rotated twice (by two nodes, or
// twice by one), a missing rotation, a skipped version, a rotation not made
// by the system.
func TestRotationProblem(t *testing.T) {
	first := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ev := func(seq, version int, after time.Duration, actor string) map[string]interface{} {
		return map[string]interface{}{
			"seq": json.Number(strconv.Itoa(seq)), "version": json.Number(strconv.Itoa(version)),
			"time":  first.Add(after).Format(time.RFC3339Nano),
			"actor": map[string]interface{}{"type": actor},
		}
	}
	cases := []struct {
		name    string
		rotated []map[string]interface{}
		want    string // "" for no problem, else a part of the message
	}{
		{"one rotation", []map[string]interface{}{ev(5, 2, 2*time.Second, "system")}, ""},
		{"next period too", []map[string]interface{}{ev(5, 2, 2*time.Second, "system"), ev(9, 3, 62*time.Second, "system")}, ""},
		{"none", nil, "0 rotations"},
		{"twice in one tick", []map[string]interface{}{ev(5, 2, 2*time.Second, "system"), ev(6, 3, 2*time.Second, "system")}, "rotated twice"},
		{"second node later in the cycle", []map[string]interface{}{ev(5, 2, 2*time.Second, "system"), ev(7, 3, 40*time.Second, "system")}, "rotated twice"},
		{"version skipped", []map[string]interface{}{ev(5, 3, 2*time.Second, "system")}, "want version 2"},
		{"not by the system", []map[string]interface{}{ev(5, 2, 2*time.Second, "token")}, "by token"},
	}
	for _, tc := range cases {
		got := rotationProblem(tc.rotated, first, time.Minute)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: rotationProblem = %q, want %q", tc.name, got, tc.want)
		}
	}
}
