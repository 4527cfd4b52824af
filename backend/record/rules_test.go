package record

import (
	"reflect"
	"testing"
	"time"
)

// TestAgentTTLBounds: the ttl is the time to the next scheduled change, at
// most the grace less a quarter (5 minutes at most), never below 1 s.
func TestAgentTTLBounds(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	k := &Key{NextRotationAt: t0.Add(30 * 24 * time.Hour), Versions: []*KeyVersion{{Version: 1, State: StateActive}}}
	cases := []struct {
		grace time.Duration
		now   time.Time
		want  int64
	}{
		{24 * time.Hour, t0, 24*3600 - 300},
		{time.Minute, t0, 45},
		{30 * time.Second, t0, 23}, // 22.5 s, rounded up
		{0, t0, 30 * 24 * 3600},    // no grace: nothing to protect
		{time.Hour, k.NextRotationAt.Add(-10 * time.Second), 10},
		{time.Hour, k.NextRotationAt.Add(time.Second), int64(OverdueRecheck / time.Second)},
	}
	for _, tc := range cases {
		if got := AgentTTL(k, tc.grace, tc.now); got != tc.want {
			t.Errorf("grace %v at %v: ttl %d, want %d", tc.grace, tc.now.Sub(t0), got, tc.want)
		}
	}
	if got := AgentTTL(&Key{}, time.Hour, t0); got != 0 {
		t.Errorf("key that does not rotate: ttl %d, want 0", got)
	}
}

func TestDecodeConfigFillsOnlyMissingFields(t *testing.T) {
	// A record written before a field existed takes that field's default;
	// one without risk_tiers keeps the default table.
	cfg, err := DecodeConfig([]byte(`{"key_prefix":"zz","review_period":0}`))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.KeyPrefix != "zz" || cfg.ReviewPeriod != 0 || cfg.TokenTTL != def.TokenTTL || !reflect.DeepEqual(cfg.RiskTiers, def.RiskTiers) {
		t.Fatalf("decoded %+v", cfg)
	}
	cfg, err = DecodeConfig([]byte(`{"risk_tiers":{"high":3600000000000}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.RiskTiers, map[string]time.Duration{"high": time.Hour}) {
		t.Fatalf("risk_tiers = %v", cfg.RiskTiers)
	}
}
