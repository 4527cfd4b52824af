package backend

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Alert retention (SPEC §7). Alerts used to be kept for ever, and every
// alerts listing reads stored alerts; a sustained attack (one alert per
// alert_window) made listings grow without bound. Alerts past their
// retention are deleted by the governance tick. Their history stays in the
// lifecycle log, which is never pruned: alert.raised and
// alert.acknowledged entries remain, and an alerts.pruned entry names the
// pruned alert ids (written before they are deleted, as keys.purged is).
//
//   - Acknowledged alerts are kept alertRetentionAcknowledged (90 days)
//     after they were raised: someone handled them, and 90 days covers a
//     quarterly access review and the time-to-revoke window
//     (openAlertMaxAge), after which an alert no longer counts anywhere.
//   - All alerts, open or not, are kept until the end of the UTC day
//     alertRetentionOpen (180 days) after they were raised: an alert nobody
//     acknowledged in half a year will not be, and keeping it longer only
//     slows every listing. Whole days, so that the open-alert metric
//     (alerts_open.go, counted per day) stops counting an alert when it is
//     pruned.
//
// Cost: O(pruned), never O(alerts) per tick. Alert ids sort by raising time,
// so the retention walks a sorted listing: the front is deleted without a
// read once past the open retention; the acknowledged retention reads each
// alert once when it turns 90 days old (st.AlertPrune persists how far it
// got), deletes it if acknowledged and otherwise keeps its id for the front.
// A tick examines at most alertPruneBatch alerts. The listing is node-local
// memory (at most 2 × alertPruneListMax ids) and is taken again only when
// used up: after alertPruneListMax alerts were handled, or once the newest
// listed alert passed the 90 days. An alert written while a listing is
// taken is found by the next listing.

const (
	alertRetentionAcknowledged = 90 * record.Day
	alertRetentionOpen         = 180 * record.Day

	// alertPruneBatch bounds the alerts one tick examines or deletes.
	alertPruneBatch = 2000
	// alertPruneListMax bounds each part of the walker's listing.
	alertPruneListMax = 10000
	// alertPruneEventMax is how many ids one alerts.pruned entry names
	// (about 2.5 KB), as keys.purged does.
	alertPruneEventMax = 100
)

// alertsRetainedFrom is the start of the UTC day before which all alerts
// are pruned and no longer count as open.
func alertsRetainedFrom(now time.Time) time.Time {
	y, m, d := now.UTC().Add(-alertRetentionOpen).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// alertWalker is the retention's node-local listing of alert ids, split at
// the persisted position (st.AlertPrune) of the acknowledged retention.
// Guarded by govRuntime.persistMu.
type alertWalker struct {
	valid    bool
	listedAt time.Time // domain time of the listing
	// at is the position the walker is at; a different persisted position
	// (another node pruned meanwhile) makes it list again. (Had the other
	// node only deleted past the open retention, ids it deleted may be
	// named in a second alerts.pruned entry; deleting them again is a
	// no-op.)
	at string
	// kept are ids the acknowledged retention examined and kept (open
	// then), oldest first; keptMore: storage holds more of them than kept.
	kept     []string
	keptMore bool
	// pending are ids not examined yet, oldest first; pendingMore: storage
	// held more of them than pending when listed.
	pending     []string
	pendingMore bool
	// max bounds kept and pending (alertPruneListMax but in tests).
	max int
}

// needsList reports whether the walker must list again to go on.
func (w *alertWalker) needsList(at string, ackCutoff time.Time) bool {
	return !w.valid || w.at != at ||
		(len(w.kept) == 0 && w.keptMore) ||
		// Alerts written since the listing are due once it is 90 days old.
		(len(w.pending) == 0 && (w.pendingMore || ackCutoff.After(w.listedAt)))
}

func (w *alertWalker) list(ctx context.Context, s logical.Storage, at string, now time.Time, max int) error {
	*w = alertWalker{max: max}
	ids, err := s.List(ctx, storageAlertPrefix)
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

// pruneAlerts deletes alerts past their retention; the governance tick
// calls it under persistMu and saves st.
func (b *apikeysBackend) pruneAlerts(ctx context.Context, s logical.Storage, st *govState) error {
	now := b.clock.Now()
	openCutoff := alertsRetainedFrom(now)
	ackCutoff := now.Add(-alertRetentionAcknowledged)
	st.trimOpenAlerts(openCutoff)
	limit, listMax := alertPruneBatch, alertPruneListMax
	if n := b.gov.alerts.pruneBatch; n > 0 {
		limit = n
	}
	if n := b.gov.alerts.listMax; n > 0 {
		listMax = n
	}
	w := &b.gov.alerts.walker
	at := st.AlertPrune
	var doomed []string
	listed := false
	for handled := 0; handled < limit; handled++ {
		if err := ctx.Err(); err != nil {
			w.valid = false
			return err
		}
		if w.needsList(at, ackCutoff) {
			if listed {
				break // at most one listing per tick
			}
			if err := w.list(ctx, s, at, now, listMax); err != nil {
				return err
			}
			listed = true
		}
		if id, examined, ok := w.front(); ok && alertIDBefore(id, openCutoff) {
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
		raised, timed := alertIDTime(id)
		if timed && !raised.Before(ackCutoff) {
			break // nothing else is due
		}
		var a *record.Alert
		if timed { // an id that is not a time is not ours to age: kept
			var err error
			if a, err = getAlert(ctx, s, id); err != nil {
				w.valid = false
				return err
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
	if err := b.deleteAlerts(ctx, s, doomed, now); err != nil {
		// Examine again from the last saved position: what was deleted is
		// gone, the rest is found again (and may be named in two entries).
		w.valid = false
		return err
	}
	st.AlertPrune = at
	if len(doomed) > 0 {
		b.logger.Info("pruned alerts past their retention", "pruned", len(doomed),
			"acknowledged_retention", alertRetentionAcknowledged.String(), "open_retention", alertRetentionOpen.String())
	}
	return nil
}

// alertIDBefore reports whether the alert with this id was raised before t.
// An id that is not a time (not written by newAlertID) is never due.
func alertIDBefore(id string, t time.Time) bool {
	raised, ok := alertIDTime(id)
	return ok && raised.Before(t)
}

// deleteAlerts logs and deletes alerts in batches: each alerts.pruned entry
// is written before its alerts are deleted, so no alert disappears without
// the log saying so.
func (b *apikeysBackend) deleteAlerts(ctx context.Context, s logical.Storage, ids []string, now time.Time) error {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), alertPruneEventMax)]
		ids = ids[len(batch):]
		ev := systemEvent(eventlog.AlertsPruned)
		ev.Time = now
		ev.Details = map[string]string{
			"count":                  strconv.Itoa(len(batch)),
			"alert_ids":              strings.Join(batch, ","),
			"acknowledged_retention": alertRetentionAcknowledged.String(),
			"open_retention":         alertRetentionOpen.String(),
		}
		if err := b.log.Append(ctx, s, ev); err != nil {
			return err
		}
		for _, id := range batch {
			if err := s.Delete(ctx, alertStorageKey(id)); err != nil {
				return fmt.Errorf("deleting alert %s: %w", id, err)
			}
		}
	}
	return nil
}
