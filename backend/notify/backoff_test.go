package notify

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	const almostOne = 0.9999999999
	for _, tc := range []struct {
		attempt int
		full    time.Duration
	}{
		{0, 5 * time.Second}, // below 1 is the first retry
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{10, 2560 * time.Second},
		{11, time.Hour}, // 5120s is past the cap
		{40, time.Hour},
		{1 << 30, time.Hour},
	} {
		lo := RetryDelay(tc.attempt, func() float64 { return 0 })
		mid := RetryDelay(tc.attempt, func() float64 { return 0.5 })
		hi := RetryDelay(tc.attempt, func() float64 { return almostOne })
		if lo != tc.full/2 {
			t.Errorf("attempt %d, rnd 0: %v, want %v", tc.attempt, lo, tc.full/2)
		}
		if want := tc.full/2 + tc.full/4; mid != want {
			t.Errorf("attempt %d, rnd 0.5: %v, want %v", tc.attempt, mid, want)
		}
		if hi > tc.full || hi < tc.full-time.Millisecond {
			t.Errorf("attempt %d, rnd ~1: %v, want just under %v", tc.attempt, hi, tc.full)
		}
	}
	for i := 1; i < 30; i++ {
		d := RetryDelay(i, nil)
		if d < 2500*time.Millisecond || d > time.Hour {
			t.Fatalf("attempt %d with math/rand: %v outside [2.5s, 1h]", i, d)
		}
	}
	if d := RetryDelay(1, func() float64 { return 7 }); d != 2500*time.Millisecond {
		t.Fatalf("rnd out of range: %v, want the lower bound", d)
	}
}
