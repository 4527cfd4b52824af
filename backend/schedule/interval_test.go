package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestShortestInterval(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		name string
		p    Policy
		want time.Duration
	}{
		{"period", Policy{Period: 90 * day}, 90 * day},
		{"every minute", Policy{Cron: "* * * * *"}, time.Minute},
		{"every five minutes", Policy{Cron: "*/5 * * * *"}, 5 * time.Minute},
		{"hourly", Policy{Cron: "0 * * * *"}, time.Hour},
		{"hourly descriptor", Policy{Cron: "@hourly"}, time.Hour},
		{"every descriptor", Policy{Cron: "@every 90m"}, 90 * time.Minute},
		{"daily", Policy{Cron: "0 3 * * *"}, day},
		{"weekly", Policy{Cron: "0 3 * * 1"}, 7 * day},
		// 23:00 to 01:00 the next day is shorter than 01:00 to 23:00.
		{"gap across midnight", Policy{Cron: "0 1,23 * * *"}, 2 * time.Hour},
		// February is the shortest month.
		{"monthly", Policy{Cron: "0 0 1 * *"}, 28 * day},
		// Only months with 31 days match: July 31 to August 31.
		{"31st of the month", Policy{Cron: "0 0 31 * *"}, 31 * day},
		// February 28 and 29 are a day apart only in leap years.
		{"leap day", Policy{Cron: "0 0 28,29 2 *"}, day},
		{"only leap days", Policy{Cron: "0 0 29 2 *"}, 1461 * day},
		// March 1st or Sundays in March: a day apart only in years where
		// March 1st is a Saturday (next in 2031).
		{"day of month or weekday", Policy{Cron: "0 0 1 3 0"}, day},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.ShortestInterval(t0)
			if err != nil || got != tc.want {
				t.Fatalf("ShortestInterval = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestShortestIntervalAcrossOffsetChanges(t *testing.T) {
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Fatalf("no time zone data (time/tzdata is embedded): %v", err)
	}
	cases := []struct {
		name string
		cron string
		want time.Duration
	}{
		// The night the clocks go forward, 03:00 comes 23h after 03:00.
		{"daily across spring forward", "CRON_TZ=Europe/Berlin 0 3 * * *", 23 * time.Hour},
		// The cron library fires in both passes of the repeated hour the
		// night the clocks go back.
		{"repeated hour", "CRON_TZ=Europe/Berlin 30 2 * * *", time.Hour},
		// The hour skipped in spring has no time to fire at: still 1h.
		{"hourly", "CRON_TZ=Europe/Berlin 0 * * * *", time.Hour},
		{"zone without daylight saving", "CRON_TZ=Asia/Tokyo 0 3 * * *", 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Policy{Cron: tc.cron}.ShortestInterval(t0)
			if err != nil || got != tc.want {
				t.Fatalf("ShortestInterval = %v, %v; want %v", got, err, tc.want)
			}
			if brute := bruteShortest(t, tc.cron, 400*24*time.Hour, 20000); brute != got {
				t.Fatalf("scanning a year of times finds %v, ShortestInterval %v", brute, got)
			}
		})
	}
}

// TestShortestIntervalMatchesScan compares the computed interval with the
// shortest gap among the actual upcoming times (the cron library's Next),
// over a span long enough to contain it.
func TestShortestIntervalMatchesScan(t *testing.T) {
	cases := []struct {
		cron string
		span time.Duration
	}{
		{"*/7 * * * *", 3 * 24 * time.Hour},
		{"0,59 0,23 * * *", 10 * 24 * time.Hour},
		{"15 4 * * 1-5", 30 * 24 * time.Hour},
		{"0 0 1,15 * *", 400 * 24 * time.Hour},
		{"0 12 * 1,7 *", 400 * 24 * time.Hour},
		{"0 0 28,29 2 *", 4 * 365 * 24 * time.Hour},
		{"0 0 1 3 0", 5 * 365 * 24 * time.Hour},
		{"30 6 13 * 5", 400 * 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.cron, func(t *testing.T) {
			got, err := Policy{Cron: tc.cron}.ShortestInterval(t0)
			if err != nil {
				t.Fatal(err)
			}
			if brute := bruteShortest(t, tc.cron, tc.span, 50000); brute != got {
				t.Fatalf("scan finds %v, ShortestInterval %v", brute, got)
			}
		})
	}
}

func TestShortestIntervalNeverFires(t *testing.T) {
	_, err := Policy{Cron: "0 0 30 2 *"}.ShortestInterval(t0)
	if err == nil || !strings.Contains(err.Error(), "matches no date") {
		t.Fatalf("err = %v", err)
	}
}

// bruteShortest scans the schedule's times from t0 for span (at most max
// times) and returns the shortest gap between consecutive ones.
func bruteShortest(t *testing.T, spec string, span time.Duration, max int) time.Duration {
	t.Helper()
	s, err := ParseCron(spec)
	if err != nil {
		t.Fatal(err)
	}
	best := time.Duration(1<<63 - 1)
	prev := s.Next(t0)
	for i := 0; i < max && prev.Before(t0.Add(span)); i++ {
		n := s.Next(prev)
		if n.IsZero() {
			break
		}
		best = min(best, n.Sub(prev))
		prev = n
	}
	return best
}

// BenchmarkShortestInterval: role and config writes compute it per role.
func BenchmarkShortestInterval(b *testing.B) {
	for _, spec := range []string{"0 3 * * *", "* * * * *", "CRON_TZ=Europe/Berlin */5 * * * *"} {
		b.Run(spec, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := (Policy{Cron: spec}).ShortestInterval(t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
