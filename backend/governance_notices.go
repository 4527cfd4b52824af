package backend

import (
	"context"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Advance notices (SPEC §9) are lifecycle-log entries the governance sweep
// appends, which the outbox turns into webhooks like every entry:
// key.rotation_due_soon before the due rotation of a key its owner must
// rotate by hand, key.expiring before the expiry of a key whose role asks
// for it. The key's governance marks keep each to one per due time and
// lead, or per expiry.
//
// The entry is appended before the mark is set, and the mark is stored
// when the tick saves the state, as for the overdue alert: a crash in
// between repeats the notice at the next tick, never loses it. An owner
// told twice is better than one never told.

// rotationNoticeDue is the due time that advance notices are given for: the
// next rotation of a key that is neither leased (it ends with its lease)
// nor rotated automatically; zero for others.
func rotationNoticeDue(k *record.Key) time.Time {
	if k.Leased || record.AutoRotates(k) {
		return time.Time{}
	}
	return k.NextRotationAt
}

// sweepNotices gives the notices owed at now for k, a live key (neither
// revoked nor expired) of role (nil if gone), recording them in m and in
// st.
func (b *apikeysBackend) sweepNotices(ctx context.Context, s logical.Storage, st *governance.State, cfg *record.Config, role *record.Role, now time.Time, k *record.Key, m *governance.Marks) error {
	due := rotationNoticeDue(k)
	if lead, ok := governance.RotationNotice(due, now, cfg.RotationNoticeLeadTimes); ok && m.RotationNoticeOwed(due, lead) {
		ev := noticeEvent(eventlog.KeyRotationDueSoon, k, now, map[string]string{
			"due_at": due.Format(time.RFC3339),
			"lead":   lead.String(),
		})
		if err := b.log.Append(ctx, s, ev); err != nil {
			return err
		}
		m.NoteRotationNotice(due, lead)
		st.SetMarks(k.KeyID, *m)
	}
	if role != nil && governance.ExpiryNotice(k.ExpiresAt, now, role.ExpiryNotice) && m.ExpiryNoticeOwed(k.ExpiresAt) {
		ev := noticeEvent(eventlog.KeyExpiring, k, now, map[string]string{
			"expires_at": k.ExpiresAt.Format(time.RFC3339),
			"lead":       role.ExpiryNotice.String(),
		})
		if err := b.log.Append(ctx, s, ev); err != nil {
			return err
		}
		m.Expiring = k.ExpiresAt
		st.SetMarks(k.KeyID, *m)
	}
	return nil
}

// noticeEvent is a notice's log entry, attributed to "system" and naming
// the key and its current version.
func noticeEvent(typ string, k *record.Key, now time.Time, details map[string]string) eventlog.Event {
	v := 0
	if c := k.Current(); c != nil {
		v = c.Version
	}
	ev := eventFor(nil, typ, k, v)
	ev.Time = now
	ev.Details = details
	return ev
}
