package benchkit

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRatePassesEveryIndexOnceAndCountsTheCalls(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	start := time.Now()
	rate, err := Rate(3, 50*time.Millisecond, func(i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return nil
	})
	outer := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d was passed %d times", i, n)
		}
	}
	// Each worker's indexes are w, w+3, ...: none is skipped but the
	// last few each worker did not reach.
	for i := 0; i < len(seen)-3; i++ {
		if seen[i] != 1 {
			t.Fatalf("index %d was skipped (%d calls)", i, len(seen))
		}
	}
	// The calls over Rate's own time, which is at least its 50ms and at
	// most what the caller saw.
	calls := float64(len(seen))
	if lo, hi := calls/outer.Seconds(), calls/0.05; rate < lo || rate > hi {
		t.Fatalf("rate %.0f/s for %d calls, want within [%.0f, %.0f]", rate, len(seen), lo, hi)
	}
}

func TestRateStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	start := time.Now()
	_, err := Rate(2, time.Minute, func(i int) error {
		if i == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("Rate ran on after an error")
	}
}
