package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// CRON_TZ schedules need the time zone database; embedding it (about
	// 450 KB) keeps them working on hosts without tzdata installed.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// cronParser accepts the standard 5-field form (minute hour dom month dow)
// and descriptors such as @daily, as Vault's own rotation_schedule does.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron validates a 5-field cron expression.
func ParseCron(spec string) (cron.Schedule, error) {
	// The cron library slices a "TZ=zone" / "CRON_TZ=zone" prefix up to the
	// first space and panics when there is none, which would crash the
	// plugin process on a role write.
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("rotation_schedule %q is not a valid 5-field cron expression (e.g. \"CRON_TZ=Europe/Berlin 0 3 * * 1\"): the time zone must be followed by a space and the 5 fields", spec)
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("rotation_schedule %q is not a valid 5-field cron expression (e.g. \"0 3 * * 1\"): %v", spec, err)
	}
	return s, nil
}

// Policy is a key's effective rotation policy.
type Policy struct {
	// Period rotates every Period after the last rotation.
	Period time.Duration
	// Cron, when set, rotates at the schedule's times instead of Period.
	Cron string
	// Window bounds how late after a scheduled time a rotation may still
	// start; a missed window waits for the next scheduled time.
	Window time.Duration
}

// MinWindow is the shortest rotation_window accepted. Rotations run from
// Vault's periodic function, which Vault's rollback manager calls about once
// a minute at an arbitrary offset within the minute (and later when a tick
// runs long or the node is busy). A window shorter than one tick period can
// fall entirely between two ticks, at every scheduled time, so a key would
// never rotate; two periods leave one whole spare tick for a late or
// skipped one.
const MinWindow = 2 * time.Minute

// ErrNoPolicy is returned for a policy with neither a period nor a schedule.
var ErrNoPolicy = errors.New("rotation policy needs a rotation_period or a rotation_schedule")

// Validate checks the policy's fields.
func (p Policy) Validate() error {
	if p.Cron == "" && p.Period <= 0 {
		return ErrNoPolicy
	}
	if p.Cron != "" {
		if _, err := ParseCron(p.Cron); err != nil {
			return err
		}
	}
	if p.Window < 0 || (p.Window > 0 && p.Window < MinWindow) {
		return fmt.Errorf("rotation_window must be 0 (no limit) or at least %s, twice the ~1m period of the rotation tick, so a tick always falls inside it (got %s)", MinWindow, p.Window)
	}
	if p.Window > 0 && p.Cron == "" {
		return fmt.Errorf("rotation_window applies only with rotation_schedule")
	}
	return nil
}

// Next returns when a key last rotated at last is next due.
func (p Policy) Next(last time.Time) time.Time {
	if p.Cron != "" {
		s, err := ParseCron(p.Cron)
		if err == nil {
			return s.Next(last)
		}
	}
	if p.Period <= 0 {
		return time.Time{}
	}
	return last.Add(p.Period)
}

// EffectiveWindow is the window rotations are held to: 0 (no limit) without
// a schedule or a window, else the window but at least MinWindow. A window
// below the minimum can only come from a role stored before the minimum was
// enforced; evaluating it as the minimum keeps such keys rotating instead of
// missing every scheduled time.
func (p Policy) EffectiveWindow() time.Duration {
	if p.Cron == "" || p.Window <= 0 {
		return 0
	}
	return max(p.Window, MinWindow)
}

// InWindow reports whether a rotation due at due may run at now. Without a
// window (or for period-based policies) any time at or after due is fine.
func (p Policy) InWindow(due, now time.Time) bool {
	if now.Before(due) {
		return false
	}
	w := p.EffectiveWindow()
	return w == 0 || now.Sub(due) <= w
}
