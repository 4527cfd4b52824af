package record

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNoticeLeadTimesNormalizedAndBounded(t *testing.T) {
	h := time.Hour
	if got, want := NormalizeLeadTimes([]time.Duration{24 * h, 336 * h, 72 * h, 24 * h}), []time.Duration{336 * h, 72 * h, 24 * h}; !reflect.DeepEqual(got, want) {
		t.Fatalf("NormalizeLeadTimes = %v, want %v", got, want)
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, ok := range [][]time.Duration{nil, {}, {MaxNoticeLead, time.Second}} {
		cfg.RotationNoticeLeadTimes = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("lead times %v refused: %v", ok, err)
		}
	}
	for _, bad := range [][]time.Duration{
		{5 * h, 4 * h, 3 * h, 2 * h, h, time.Minute}, // six
		{0},
		{-h},
		{MaxNoticeLead + time.Second},
		{h, 2 * h}, // not as stored
		{h, h},
	} {
		cfg.RotationNoticeLeadTimes = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "rotation_notice_lead_times") {
			t.Errorf("lead times %v: %v", bad, err)
		}
	}
	for notice, valid := range map[time.Duration]bool{0: true, MaxNoticeLead: true, -time.Second: false, MaxNoticeLead + time.Second: false} {
		r := &Role{Name: "r", Scopes: []string{"orders:read"}, Environment: "prod", ExpiryNotice: notice}
		err := r.Validate(DefaultConfig(), time.Now())
		if valid != (err == nil) || (err != nil && !strings.Contains(err.Error(), "expiry_notice")) {
			t.Errorf("expiry_notice %s: %v", notice, err)
		}
	}
}
