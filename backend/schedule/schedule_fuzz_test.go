package schedule

import (
	"strings"
	"testing"
	"time"
)

// fuzzNow is the reference time of the fuzz targets, so runs are
// reproducible whatever the machine's clock says.
var fuzzNow = time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC)

// FuzzParseCron feeds arbitrary text to the cron parser as a role's
// rotation_schedule. Nothing may panic (a panic takes the plugin process
// down on a role write); a policy is valid exactly when the schedule
// parses; and for an accepted schedule, ShortestInterval either refuses it
// (no real date) or returns a positive bound that no actual gap between
// upcoming rotations undercuts, since grace periods are checked against it.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{
		"0 3 * * 1", "*/5 * * * *", "@daily", "@every 90m", "@every 0s", "@every -1h",
		"0 0 30 2 *", "0 0 29 2 *", "0 1,23 * * *", "0 0 1 3 0",
		"CRON_TZ=Europe/Berlin 30 2 * * *", "TZ=America/New_York 0 1 * * *",
		"TZ=", "CRON_TZ=Nowhere/Zone 0 0 * * *", "TZ=UTC", "60 24 32 13 8",
		"* * * * * *", "", "@reboot", "0-59/0 * * * *", "5-1 * * * *",
		"@every 9223372036854775807ns", "@every 1e400s",
	} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, spec string, offset int64) {
		if len(spec) > 256 {
			return // role fields are bounded well below this
		}
		sched, err := ParseCron(spec)
		p := Policy{Cron: spec}
		if verr := p.Validate(); (verr == nil) != (err == nil && spec != "") {
			t.Fatalf("Validate(%q) = %v but ParseCron gave %v", spec, verr, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "rotation_schedule") {
				t.Fatalf("ParseCron(%q) error does not name the field: %v", spec, err)
			}
			return
		}
		// Any start within about 30 years of the reference time.
		now := fuzzNow.Add(time.Duration(offset%(30*365*24)) * time.Hour)
		shortest, err := p.ShortestInterval(now)
		if err != nil {
			return
		}
		if shortest <= 0 {
			t.Fatalf("ShortestInterval(%q) = %v", spec, shortest)
		}
		prev := sched.Next(now)
		if prev.IsZero() {
			t.Fatalf("%q has a shortest interval %v but no next time after %v", spec, shortest, now)
		}
		if !prev.After(now) {
			t.Fatalf("%q: next time %v is not after %v", spec, prev, now)
		}
		for i := 0; i < 50; i++ {
			next := sched.Next(prev)
			if next.IsZero() {
				break
			}
			if gap := next.Sub(prev); gap < shortest {
				t.Fatalf("%q: %v to %v is %v, below ShortestInterval %v", spec, prev, next, gap, shortest)
			}
			prev = next
		}
	})
}

// FuzzPolicy checks the period, window and due-time rules on arbitrary
// durations: Validate refuses what cannot rotate, Next after a period
// rotation is exactly one period later, and InWindow never allows a
// rotation before it is due nor, with a window, after the window.
func FuzzPolicy(f *testing.F) {
	f.Add(int64(time.Hour), int64(0), "", int64(0))
	f.Add(int64(0), int64(3*time.Minute), "0 3 * * *", int64(time.Minute))
	f.Add(int64(-1), int64(time.Minute), "0 3 * * *", int64(-time.Second))
	f.Add(int64(time.Hour), int64(5*time.Minute), "", int64(10*time.Minute))
	f.Add(int64(1<<62), int64(1<<62), "@hourly", int64(1<<62))
	f.Fuzz(func(t *testing.T, period, window int64, spec string, late int64) {
		if len(spec) > 256 {
			return
		}
		p := Policy{Period: time.Duration(period), Cron: spec, Window: time.Duration(window)}
		if err := p.Validate(); err != nil {
			return
		}
		if p.Cron == "" && p.Period <= 0 {
			t.Fatalf("Validate accepted a policy with no period and no schedule: %+v", p)
		}
		if w := p.EffectiveWindow(); w != 0 && (w < MinWindow || p.Cron == "") {
			t.Fatalf("effective window %v for %+v", w, p)
		}
		if p.Cron == "" {
			if next := p.Next(fuzzNow); !next.Equal(fuzzNow.Add(p.Period)) {
				t.Fatalf("Next(%v) = %v for period %v", fuzzNow, next, p.Period)
			}
		}
		due := fuzzNow
		at := due.Add(time.Duration(late))
		in := p.InWindow(due, at)
		switch {
		case at.Before(due):
			if in {
				t.Fatalf("InWindow allows %v before due %v", at, due)
			}
		case p.EffectiveWindow() == 0:
			if !in {
				t.Fatalf("InWindow refuses %v after due %v with no window", at, due)
			}
		default:
			if in != (at.Sub(due) <= p.EffectiveWindow()) {
				t.Fatalf("InWindow(%v, %v) = %v with window %v", due, at, in, p.EffectiveWindow())
			}
		}
	})
}
