package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC) // a Friday

func TestNext(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		last time.Time
		want time.Time
	}{
		{"period", Policy{Period: 90 * 24 * time.Hour}, t0, t0.Add(90 * 24 * time.Hour)},
		{"one minute", Policy{Period: time.Minute}, t0, t0.Add(time.Minute)},
		{"cron daily 03:00", Policy{Cron: "0 3 * * *"}, t0, time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)},
		{"cron mondays", Policy{Cron: "0 3 * * 1"}, t0, time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)},
		{"cron wins over period", Policy{Cron: "@hourly", Period: time.Minute}, t0, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)},
		{"no policy", Policy{}, t0, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Next(tc.last); !got.Equal(tc.want) {
				t.Fatalf("Next = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"period", Policy{Period: time.Hour}, true},
		{"cron", Policy{Cron: "*/5 * * * *"}, true},
		{"cron with window", Policy{Cron: "0 3 * * *", Window: time.Hour}, true},
		{"nothing", Policy{}, false},
		{"six fields", Policy{Cron: "0 0 3 * * *"}, false},
		{"garbage", Policy{Cron: "every tuesday"}, false},
		{"window without cron", Policy{Period: time.Hour, Window: time.Minute}, false},
		{"negative window", Policy{Cron: "@daily", Window: -time.Second}, false},
		{"window shorter than two ticks", Policy{Cron: "@daily", Window: 30 * time.Second}, false},
		{"window just below the minimum", Policy{Cron: "@daily", Window: MinWindow - time.Second}, false},
		{"window at the minimum", Policy{Cron: "@daily", Window: MinWindow}, true},
		{"time zone", Policy{Cron: "CRON_TZ=UTC 0 3 * * *"}, true},
		// The cron library panics on a zone prefix without a space.
		{"time zone without fields", Policy{Cron: "CRON_TZ=UTC"}, false},
		{"TZ without fields", Policy{Cron: "TZ=Europe/Berlin"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestInWindow(t *testing.T) {
	due := t0
	cases := []struct {
		name string
		p    Policy
		now  time.Time
		want bool
	}{
		{"before due", Policy{Period: time.Hour}, due.Add(-time.Second), false},
		{"period at due", Policy{Period: time.Hour}, due, true},
		{"period long after", Policy{Period: time.Hour}, due.Add(100 * time.Hour), true},
		{"cron inside window", Policy{Cron: "@daily", Window: time.Hour}, due.Add(59 * time.Minute), true},
		{"cron window edge", Policy{Cron: "@daily", Window: time.Hour}, due.Add(time.Hour), true},
		{"cron window missed", Policy{Cron: "@daily", Window: time.Hour}, due.Add(61 * time.Minute), false},
		{"cron without window", Policy{Cron: "@daily"}, due.Add(10 * time.Hour), true},
		// A window below MinWindow (stored before it was enforced) counts
		// as MinWindow: a tick 90s late still rotates.
		{"stored window below minimum", Policy{Cron: "@hourly", Window: 30 * time.Second}, due.Add(90 * time.Second), true},
		{"stored window below minimum, missed", Policy{Cron: "@hourly", Window: 30 * time.Second}, due.Add(MinWindow + time.Second), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.InWindow(due, tc.now); got != tc.want {
				t.Fatalf("InWindow = %v, want %v", got, tc.want)
			}
		})
	}
}
