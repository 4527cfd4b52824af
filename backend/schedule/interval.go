package schedule

import (
	"fmt"
	"math"
	"time"

	"github.com/robfig/cron/v3"
)

// Why the shortest interval matters: a rotation retires any version still
// in its grace (at most two versions are accepted at once), so a grace that
// is not shorter than the time between two rotations would cut it short.
// For a fixed period the interval is the period; for a cron schedule it is
// the shortest gap between two consecutive scheduled times, which may occur
// only rarely (e.g. "0 0 28,29 2 *" is a day apart only in leap years), so
// it is computed over the schedule's whole cycle rather than sampled.

// cycleDays is the length of the Gregorian calendar's cycle: every 400
// years the same dates fall on the same weekdays again (146097 days are
// exactly 20871 weeks), so the set of days a cron schedule matches (month,
// day of month, day of week) repeats with this period exactly. Walking it
// is ~146k steps of integer arithmetic (well under a millisecond), cheaper
// and more exact than sampling upcoming occurrences: an every-minute
// schedule has half a million occurrences a year, while a leap-day or
// weekday-alignment gap may first show up years from now.
const cycleDays = 146097

// cycleStartYear and cycleStartWeekday name the day the cycle walk starts
// on: 2000-01-01 was a Saturday.
const (
	cycleStartYear    = 2000
	cycleStartWeekday = int(time.Saturday)
)

// dstWindowAfter bounds how long after a time-zone offset change the
// schedule is simulated: offset changes are at most a few hours, so the
// times they shift or repeat lie within this window.
const dstWindowAfter = 3 * time.Hour

// offsetHorizonYears is how far ahead offset changes are simulated. Zones
// change offsets on rules such as "first Sunday in November", so the date
// of a change moves with the weekdays, and a schedule on fixed dates ("0 1
// 7 * *") meets the repeated hour only in the years where the two fall
// together (New York: 7 November 2027, not 2026 or 2028). Dates fall on the
// same weekdays again every 28 years (between 1901 and 2099), so 28 years
// of changes hold every alignment; one year did not.
const offsetHorizonYears = 28

// maxSimulatedTimes bounds the simulation around one offset change; an
// every-minute schedule has 180 times in dstWindowAfter.
const maxSimulatedTimes = 1000

// ShortestInterval returns the shortest time between two consecutive
// rotations under the policy: Period for a period policy; for a cron
// schedule, the shortest gap between two consecutive scheduled times.
//
// For a schedule evaluated in a zone with daylight saving (CRON_TZ=...),
// real gaps differ from wall-clock gaps only around the zone's offset
// changes (the cron library even fires twice in a repeated hour), so the
// changes in the offsetHorizonYears after now are simulated with the
// library's own Next and their gaps included. A schedule that
// matches no date at all (e.g. "0 0 30 2 *") is an error: keys would never
// rotate.
func (p Policy) ShortestInterval(now time.Time) (time.Duration, error) {
	if p.Cron == "" {
		if p.Period <= 0 {
			return 0, ErrNoPolicy
		}
		return p.Period, nil
	}
	s, err := ParseCron(p.Cron)
	if err != nil {
		return 0, err
	}
	switch sch := s.(type) {
	case cron.ConstantDelaySchedule: // "@every <duration>"
		return sch.Delay, nil
	case *cron.SpecSchedule:
		shortest, longest, ok := wallClockGaps(sch)
		if !ok {
			return 0, fmt.Errorf("rotation_schedule %q matches no date (e.g. February 30): keys would never rotate; pick a schedule with real dates", p.Cron)
		}
		loc := sch.Location
		if loc == time.Local {
			// The cron library evaluates such schedules in the location
			// of the time it is given, and the backend's clock is UTC.
			loc = now.Location()
		}
		if d := offsetChangeGaps(sch, loc, now, longest); d < shortest {
			shortest = d
		}
		return shortest, nil
	default:
		return 0, fmt.Errorf("rotation_schedule %q: unsupported kind of schedule", p.Cron)
	}
}

// wallClockGaps returns the shortest and longest gap between consecutive
// times of s in wall-clock time (exact in UTC or any fixed-offset zone),
// and false if s matches no time at all.
//
// Every matching day has the same times of day, so the gaps are the gaps
// between those times within a day, and the gaps from the last time of one
// matching day to the first time of the next, which depend only on how far
// apart consecutive matching days are.
func wallClockGaps(s *cron.SpecSchedule) (shortest, longest time.Duration, ok bool) {
	var tod []int // seconds after midnight, ascending
	for h := 0; h < 24; h++ {
		if s.Hour&(1<<uint(h)) == 0 {
			continue
		}
		for m := 0; m < 60; m++ {
			if s.Minute&(1<<uint(m)) == 0 {
				continue
			}
			for sec := 0; sec < 60; sec++ {
				if s.Second&(1<<uint(sec)) != 0 {
					tod = append(tod, h*3600+m*60+sec)
				}
			}
		}
	}
	minDays, maxDays, ok := dayGaps(s)
	if len(tod) == 0 || !ok {
		return 0, 0, false
	}
	const daySecs = 24 * 3600
	span := tod[len(tod)-1] - tod[0]
	lo, hi := math.MaxInt, 0
	for i := 1; i < len(tod); i++ {
		d := tod[i] - tod[i-1]
		lo, hi = min(lo, d), max(hi, d)
	}
	lo = min(lo, minDays*daySecs-span)
	hi = max(hi, maxDays*daySecs-span)
	return time.Duration(lo) * time.Second, time.Duration(hi) * time.Second, true
}

// starBit marks a field written as "*" or "?" in cron.SpecSchedule.
const starBit = 1 << 63

// dayGaps walks one Gregorian cycle and returns the fewest and most days
// between two consecutive days s matches (the cycle wraps around), and
// false if it matches none. It mirrors the cron library's day rule: when
// day of month or day of week is "*", both must match; when both are
// restricted, either may.
func dayGaps(s *cron.SpecSchedule) (minDays, maxDays int, ok bool) {
	both := s.Dom&starBit != 0 || s.Dow&starBit != 0
	first, prev := -1, -1
	minDays, maxDays = math.MaxInt, 0
	day, wd := 0, cycleStartWeekday
	for y := cycleStartYear; y < cycleStartYear+400; y++ {
		for m := time.January; m <= time.December; m++ {
			n := daysIn(y, m)
			if s.Month&(1<<uint(m)) == 0 {
				day, wd = day+n, (wd+n)%7
				continue
			}
			for d := 1; d <= n; d++ {
				domOK := s.Dom&(1<<uint(d)) != 0
				dowOK := s.Dow&(1<<uint(wd)) != 0
				if (both && domOK && dowOK) || (!both && (domOK || dowOK)) {
					if first < 0 {
						first = day
					} else {
						minDays, maxDays = min(minDays, day-prev), max(maxDays, day-prev)
					}
					prev = day
				}
				day, wd = day+1, (wd+1)%7
			}
		}
	}
	if first < 0 {
		return 0, 0, false
	}
	wrap := first + cycleDays - prev
	return min(minDays, wrap), max(maxDays, wrap), true
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// offsetChangeGaps returns the shortest real gap between consecutive times
// of s that span or follow a change of loc's UTC offset in the
// offsetHorizonYears after now (math.MaxInt64 if loc has none). longest is the longest wall-clock
// gap of s, which bounds how far back the last time before a change lies.
func offsetChangeGaps(s *cron.SpecSchedule, loc *time.Location, now time.Time, longest time.Duration) time.Duration {
	shortest := time.Duration(math.MaxInt64)
	for _, change := range offsetChanges(loc, now, now.AddDate(offsetHorizonYears, 0, 0)) {
		// The last scheduled time before the change: the latest x in
		// [lo, change) whose next time is still before the change. Next
		// is monotonic in x, so a binary search finds it in ~30 calls.
		lo, hi := change.Add(-longest-2*time.Hour), change
		if n := s.Next(lo); n.IsZero() || !n.Before(change) {
			continue // no time shortly before the change: nothing spans it
		}
		for hi.Sub(lo) > time.Second {
			mid := lo.Add(hi.Sub(lo) / 2)
			if n := s.Next(mid); !n.IsZero() && n.Before(change) {
				lo = mid
			} else {
				hi = mid
			}
		}
		t := s.Next(lo)
		for i := 0; i < maxSimulatedTimes && t.Before(change.Add(dstWindowAfter)); i++ {
			n := s.Next(t)
			if n.IsZero() {
				break
			}
			shortest = min(shortest, n.Sub(t))
			t = n
		}
	}
	return shortest
}

// offsetChanges returns the instants in [from, to) at which loc's UTC
// offset changes. It samples the offset daily (zones change it at most a
// few times a year, never twice a day) and bisects each change in whole
// seconds: zone rules change offsets on whole seconds, so the instant found
// is exact, and a scheduled time falling on it counts as after the change.
func offsetChanges(loc *time.Location, from, to time.Time) []time.Time {
	offset := func(unix int64) int {
		_, off := time.Unix(unix, 0).In(loc).Zone()
		return off
	}
	var out []time.Time
	start, end := from.Unix(), to.Unix()
	prev := offset(start)
	for t := start; t < end; t += 24 * 3600 {
		next := t + 24*3600
		if o := offset(next); o != prev {
			lo, hi := t, next // offset(lo) == prev, offset(hi) != prev
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if offset(mid) == prev {
					lo = mid
				} else {
					hi = mid
				}
			}
			out = append(out, time.Unix(hi, 0).UTC())
			prev = o
		}
	}
	return out
}
