package governance

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Alert retention (SPEC §7). Every alerts listing reads stored alerts, so
// under a sustained attack (one alert per alert_window) alerts kept for
// ever would make listings grow without bound. Alerts past their retention
// are deleted by the governance tick; their history stays in the lifecycle
// log, which is never pruned.
//
//   - Acknowledged alerts are kept AcknowledgedAlertRetention (90 days)
//     after they were raised: someone handled them, and 90 days covers a
//     quarterly access review and the time-to-revoke window
//     (OpenAlertMaxAge), after which an alert no longer counts anywhere.
//   - All alerts, open or not, are kept until the end of the UTC day
//     OpenAlertRetention (180 days) after they were raised: an alert nobody
//     acknowledged in half a year will not be, and keeping it longer only
//     slows every listing. Whole days, so that the open-alert counts
//     (openalerts.go, per day) stop counting an alert when it is pruned.
//
// Cost: O(pruned), never O(alerts) per tick. Alert ids sort by raising time,
// so the retention walks a sorted listing: the front is deleted without a
// read once past the open retention; the acknowledged retention reads each
// alert once when it turns 90 days old (st.AlertPrune persists how far it
// got), deletes it if acknowledged and otherwise keeps its id for the front.
// A tick examines at most a batch of alerts. The listing is node-local
// memory (at most twice the list bound of ids) and is taken again only when
// used up: after the list bound of alerts were handled, or once the newest
// listed alert passed the 90 days. An alert written while a listing is
// taken is found by the next listing.

const (
	AcknowledgedAlertRetention = 90 * record.Day
	OpenAlertRetention         = 180 * record.Day

	// DefaultAlertPruneBatch bounds the alerts one tick examines or
	// deletes.
	DefaultAlertPruneBatch = 2000
	// DefaultAlertListMax bounds each part of the retention's listing.
	DefaultAlertListMax = 10000
)

// AlertsRetainedFrom is the start of the UTC day before which all alerts
// are pruned and no longer count as open.
func AlertsRetainedFrom(now time.Time) time.Time {
	y, m, d := now.UTC().Add(-OpenAlertRetention).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// PruneAlerts picks the alerts past their retention, at most a batch of
// them, and hands them to del, which must log and delete them; once del
// succeeds, st.AlertPrune records how far the retention got. It returns how
// many alerts del deleted. st must be the state Update passes; it also
// drops the open-alert counts of days the retention no longer keeps.
func (r *Runtime) PruneAlerts(ctx context.Context, s logical.Storage, st *State, now time.Time, del func(ids []string) error) (int, error) {
	if !r.holds(st) {
		return 0, errNotUpdating
	}
	openCutoff := AlertsRetainedFrom(now)
	ackCutoff := now.Add(-AcknowledgedAlertRetention)
	st.trimOpenAlerts(openCutoff)
	limit, listMax := DefaultAlertPruneBatch, DefaultAlertListMax
	if n := r.opts.AlertPruneBatch; n > 0 {
		limit = n
	}
	if n := r.opts.AlertListMax; n > 0 {
		listMax = n
	}
	w := &r.alerts
	at := st.AlertPrune
	var doomed []string
	listed := false
	for handled := 0; handled < limit; handled++ {
		if err := ctx.Err(); err != nil {
			w.valid = false
			return 0, err
		}
		if w.needsList(at, ackCutoff) {
			if listed {
				break // at most one listing per tick
			}
			if err := w.list(ctx, s, r.src.Alerts, at, now, listMax); err != nil {
				return 0, err
			}
			listed = true
		}
		if id, examined, ok := w.front(); ok && RaisedBefore(id, openCutoff) {
			w.popFront(examined)
			if !examined {
				at = id
			}
			doomed = append(doomed, id)
			continue
		}
		if len(w.pending) == 0 {
			break
		}
		id := w.pending[0]
		raised, timed := AlertRaisedAt(id)
		if timed && !raised.Before(ackCutoff) {
			break // nothing else is due
		}
		var a *record.Alert
		if timed { // an id that is not a time is not ours to age: kept
			var err error
			if a, err = r.src.Alerts.Alert(ctx, s, id); err != nil {
				w.valid = false
				return 0, err
			}
		}
		w.popFront(false)
		at = id
		switch {
		case a == nil:
		case a.Acknowledged:
			doomed = append(doomed, id)
		default:
			w.keep(id)
		}
	}
	if len(doomed) > 0 {
		if err := del(doomed); err != nil {
			// Examine again from the last saved position: what was
			// deleted is gone, the rest is found again (and may be
			// logged twice).
			w.valid = false
			return 0, err
		}
	}
	st.AlertPrune = at
	return len(doomed), nil
}

// alertWalker is the retention's node-local listing of alert ids, split at
// the persisted position (st.AlertPrune) of the acknowledged retention.
// Guarded by the state lock.
type alertWalker struct {
	valid    bool
	listedAt time.Time // domain time of the listing
	// at is the position the walker is at; a different persisted position
	// (another node pruned meanwhile) makes it list again. (Had the other
	// node only deleted past the open retention, ids it deleted may be
	// logged as pruned a second time; deleting them again is a no-op.)
	at string
	// kept are ids the acknowledged retention examined and kept (open
	// then), oldest first; keptMore: storage holds more of them than kept.
	kept     []string
	keptMore bool
	// pending are ids not examined yet, oldest first; pendingMore: storage
	// held more of them than pending when listed.
	pending     []string
	pendingMore bool
	// max bounds kept and pending.
	max int
}

// needsList reports whether the walker must list again to go on.
func (w *alertWalker) needsList(at string, ackCutoff time.Time) bool {
	return !w.valid || w.at != at ||
		(len(w.kept) == 0 && w.keptMore) ||
		// Alerts written since the listing are due once it is 90 days old.
		(len(w.pending) == 0 && (w.pendingMore || ackCutoff.After(w.listedAt)))
}

func (w *alertWalker) list(ctx context.Context, s logical.Storage, alerts AlertStore, at string, now time.Time, max int) error {
	*w = alertWalker{max: max}
	ids, err := alerts.AlertIDs(ctx, s)
	if err != nil {
		return err
	}
	sort.Strings(ids)
	split := sort.SearchStrings(ids, at)
	if split < len(ids) && ids[split] == at {
		split++
	}
	kept, pending := ids[:split], ids[split:]
	// Copies, so the full listing is not kept alive.
	w.kept, w.keptMore = slices.Clone(kept[:min(len(kept), max)]), len(kept) > max
	w.pending, w.pendingMore = slices.Clone(pending[:min(len(pending), max)]), len(pending) > max
	w.listedAt, w.at, w.valid = now, at, true
	return nil
}

// front is the oldest id the walker knows.
func (w *alertWalker) front() (id string, examined, ok bool) {
	if len(w.kept) > 0 {
		return w.kept[0], true, true
	}
	if len(w.pending) > 0 {
		return w.pending[0], false, true
	}
	return "", false, false
}

func (w *alertWalker) popFront(examined bool) {
	if examined {
		w.kept = w.kept[1:]
	} else {
		w.at = w.pending[0]
		w.pending = w.pending[1:]
	}
}

// keep notes an examined id that stays until the open retention. Beyond
// its bound (or what the listing held) the next listing finds it.
func (w *alertWalker) keep(id string) {
	if len(w.kept) >= w.max {
		w.keptMore = true
	}
	if !w.keptMore {
		w.kept = append(w.kept, id)
	}
}
