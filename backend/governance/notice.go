package governance

import "time"

// Advance notices: when the owner of a key is told a rotation or an expiry
// is near. The backend's sweep appends the notice to the lifecycle log and
// records it in the key's marks, so each is given once.

// RotationNotice is the lead time of the advance notice owed at now for a
// rotation due at due (zero: none scheduled): the shortest of leads that
// now has reached (now >= due - lead), so a key first seen within several
// lead times is notified once, for the nearest. None once due has passed:
// an overdue rotation is the rotation_overdue alert.
func RotationNotice(due, now time.Time, leads []time.Duration) (time.Duration, bool) {
	if due.IsZero() || !now.Before(due) {
		return 0, false
	}
	left := due.Sub(now)
	var lead time.Duration
	for _, l := range leads {
		if l >= left && (lead == 0 || l < lead) {
			lead = l
		}
	}
	return lead, lead > 0
}

// RotationNoticeOwed reports whether m has not yet recorded a notice for
// a rotation due at due with a lead as short as lead. A longer lead added
// to the mount's lead times later owes nothing: a shorter one was already
// given.
func (m Marks) RotationNoticeOwed(due time.Time, lead time.Duration) bool {
	return !m.NoticeDue.Equal(due) || lead < m.NoticeLead
}

// NoteRotationNotice records a notice given for a rotation due at due.
func (m *Marks) NoteRotationNotice(due time.Time, lead time.Duration) {
	m.NoticeDue, m.NoticeLead = due, lead
}

// ExpiryNotice reports whether an expiry at expires (zero: none) is within
// notice (zero: no notice wanted) of now and not yet reached.
func ExpiryNotice(expires, now time.Time, notice time.Duration) bool {
	return notice > 0 && !expires.IsZero() && now.Before(expires) && !now.Before(expires.Add(-notice))
}

// ExpiryNoticeOwed reports whether m has not yet recorded a notice of an
// expiry at expires.
func (m Marks) ExpiryNoticeOwed(expires time.Time) bool {
	return !m.Expiring.Equal(expires)
}
