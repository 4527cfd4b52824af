package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Crash safety (SPEC §4, §7). A key change writes, in order: a WAL entry
// naming the HMACs added and dropped and carrying the change's
// lifecycle-log entries, the new index entries, the key record (which
// names the commit), the log entries, the deletion of dropped index
// entries, then deletes the WAL entry. Verify only accepts an index entry
// whose key record holds a version with that HMAC, so a crash at any point
// leaves either the old state or the new one as far as verify can tell.
//
// An interrupted commit is finished or undone by whichever comes first: the
// mount's start (settleWALs: Vault initializes a mount when it is mounted,
// when the node becomes active and when a plugin process that died is
// started again), the next commit of the same key (finishInterruptedCommit),
// or Vault's WAL rollback (walRollback) once the entry is older than
// walRollbackMinAge. If
// the key record names the commit, the change happened: the log entries not
// yet appended are appended (the log never misses a change, even one made
// by background work that no audit device sees) and dropped index entries
// deleted. Otherwise the change never happened: index entries the record
// does not hold are deleted and nothing is logged. A log entry appended by
// the recovery says so (details recovered=true and occurred_at, the time of
// the change; its own time is when it was appended, so the log stays in
// time order).
const walKindIndex = "index"

// walRollbackMinAge leaves in-flight changes alone: only WAL entries older
// than this are treated as interrupted.
const walRollbackMinAge = 2 * time.Minute

type walIndex struct {
	Client string   `json:"client" mapstructure:"client"`
	Name   string   `json:"name" mapstructure:"name"`
	HMACs  []string `json:"hmacs" mapstructure:"hmacs"`
	// Commit identifies the change; the key record names it once written.
	Commit string `json:"commit" mapstructure:"commit"`
	// Events are the change's lifecycle-log entries, encoded as appended.
	Events []string `json:"events" mapstructure:"events"`
	// At is when the change started (the backend clock, Unix ns): log
	// entries older than that cannot be this change's.
	At int64 `json:"at" mapstructure:"at"`
	// LogFrom is the log's NextSeq when the change started: its entries,
	// if any were appended, stand from there on, so recovering it reads
	// only what came after (0 in entries of versions without it).
	LogFrom uint64 `json:"log_from,omitempty" mapstructure:"log_from"`
	// Alerts are alerts raised as part of the change (a leak report),
	// encoded as stored; their alert.raised entries are among Events.
	Alerts []string `json:"alerts,omitempty" mapstructure:"alerts"`
	// Owner identifies the backend instance that wrote the entry, so the
	// settling at mount start leaves this instance's commits in flight
	// alone; entries of any other instance (a process that died, a node
	// that lost leadership) can no longer be in flight.
	Owner string `json:"owner,omitempty" mapstructure:"owner"`
}

// commitHook lets tests inject a failure between the steps of commitKey.
type commitHook func(step string) error

// commitKey persists k after versions were added (added holds them) or
// dropped, keeping the HMAC index consistent, and appends events, the
// lifecycle-log entries of the change, so that a crash never leaves the
// change without them (see above). Once k is written, the key's schedules
// follow it (keySchedules.update). Callers hold the key's lock.
func (b *apikeysBackend) commitKey(ctx context.Context, s logical.Storage, k *record.Key, added []*record.KeyVersion, events ...eventlog.Event) error {
	return b.commitKeyWithAlerts(ctx, s, k, added, nil, events...)
}

// commitKeyWithAlerts is commitKey for a change that also raises alerts
// (prepared by prepareAlert; their alert.raised entries are made here, after
// events): they are stored after the log entries, and an interrupted commit
// is finished with them, so the change never happens without its alerts.
func (b *apikeysBackend) commitKeyWithAlerts(ctx context.Context, s logical.Storage, k *record.Key, added []*record.KeyVersion, alerts []*record.Alert, events ...eventlog.Event) error {
	step := func(name string) error {
		if b.commitHook != nil {
			return b.commitHook(name)
		}
		return nil
	}
	if err := b.finishInterruptedCommit(ctx, s, k); err != nil {
		return err
	}
	dropped := k.TrimVersions()
	now := b.clock.Now()
	// The key's pointers in the schedules' due index (schedule_index.go),
	// noted on k now, are stored alongside the WAL entry and the index
	// entries, and before k: a change never stands without them.
	waitPointers := b.sched.writeAsync(ctx, s, b.sched.plan(k, now), now)
	defer func() { _ = waitPointers() }()
	var alertBodies []string
	if len(alerts) > 0 {
		// As raiseAlert: a count of stored alerts never sees one without
		// its log entry.
		defer b.gov.LockAlertWrite()()
		for _, a := range alerts {
			body, err := json.Marshal(a)
			if err != nil {
				return err
			}
			alertBodies = append(alertBodies, string(body))
			events = append(events, alertEvent(a))
		}
	}
	bodies := make([]string, 0, len(events))
	for _, ev := range events {
		body, err := eventlog.Encode(withVersionCreated(ev, k), now)
		if err != nil {
			return err
		}
		bodies = append(bodies, string(body))
	}
	var walID string
	if len(added) > 0 || len(dropped) > 0 || len(bodies) > 0 {
		commit, err := randomHex(16)
		if err != nil {
			return err
		}
		// The WAL names every index entry this change adds or drops, so a
		// rollback can delete whichever of them the key record ends up not
		// holding, and the log entries a finished change still owes.
		logFrom, err := b.log.NextSeq(ctx, s)
		if err != nil {
			return err
		}
		w := walIndex{Client: k.Client, Name: k.Name, HMACs: append([]string(nil), dropped...), Commit: commit, Events: bodies, At: now.UnixNano(), LogFrom: logFrom, Alerts: alertBodies, Owner: b.rot.instance}
		for _, v := range added {
			w.HMACs = append(w.HMACs, v.HMAC)
		}
		id, err := framework.PutWAL(ctx, s, walKindIndex, &w)
		if err != nil {
			return fmt.Errorf("writing WAL: %w", err)
		}
		walID = id
		k.LastCommit, k.LastWAL = commit, id
		if err := step("wal"); err != nil {
			return err
		}
		for _, v := range added {
			if err := b.putIndex(ctx, s, v.HMAC, record.IndexEntry{Client: k.Client, Name: k.Name, KeyID: k.KeyID, Version: v.Version}); err != nil {
				return fmt.Errorf("writing key index: %w", err)
			}
		}
		if err := step("index"); err != nil {
			return err
		}
	}
	if err := waitPointers(); err != nil {
		return fmt.Errorf("writing schedule pointer: %w", err)
	}
	if err := b.putKey(ctx, s, k); err != nil {
		return err
	}
	// The schedules follow the key as stored from here on, whatever
	// becomes of the rest of the commit (its WAL entry finishes it).
	b.sched.update(k)
	if err := step("key"); err != nil {
		return err
	}
	for _, body := range bodies {
		if err := b.log.AppendBody(ctx, s, []byte(body)); err != nil {
			return err
		}
		if err := step("log"); err != nil {
			return err
		}
	}
	for _, a := range alerts {
		if err := putAlert(ctx, s, a); err != nil {
			return err
		}
		if err := step("alert"); err != nil {
			return err
		}
		b.logAlert(a)
	}
	for _, h := range dropped {
		if err := s.Delete(ctx, indexStorageKey(h)); err != nil {
			return fmt.Errorf("deleting index entry of a dropped version: %w", err)
		}
	}
	if walID != "" {
		if err := framework.DeleteWAL(ctx, s, walID); err != nil {
			return fmt.Errorf("deleting WAL: %w", err)
		}
	}
	return nil
}

// finishInterruptedCommit finishes the last commit of k if it was cut off
// after its key write (its WAL entry is still there): a later change of the
// key must not let Vault's rollback, which runs minutes later, mistake that
// commit for one that never happened. k is as stored; the caller holds the
// key's lock.
func (b *apikeysBackend) finishInterruptedCommit(ctx context.Context, s logical.Storage, k *record.Key) error {
	_, err := b.finishInterrupted(ctx, s, k)
	return err
}

// finishInterrupted is finishInterruptedCommit that returns the commit it
// finished (nil: none was left).
func (b *apikeysBackend) finishInterrupted(ctx context.Context, s logical.Storage, k *record.Key) (*walIndex, error) {
	if k.LastWAL == "" {
		return nil, nil
	}
	entry, err := framework.GetWAL(ctx, s, k.LastWAL)
	if err != nil {
		return nil, fmt.Errorf("reading WAL: %w", err)
	}
	if entry == nil || entry.Kind != walKindIndex {
		// Finished, or rolled back already; if this instance finished
		// it when it started, the caller still learns which commit it
		// was (a retried leak report answers as that revocation).
		return b.takeSettled(k), nil
	}
	var w walIndex
	if err := mapstructure.Decode(entry.Data, &w); err != nil {
		return nil, err
	}
	if w.Commit != k.LastCommit {
		return nil, nil
	}
	if err := b.completeCommit(ctx, s, k, w); err != nil {
		return nil, err
	}
	b.logger.Info("finished a key change interrupted after its key write", "client", w.Client, "key", w.Name)
	if err := framework.DeleteWAL(ctx, s, k.LastWAL); err != nil {
		return nil, err
	}
	return &w, nil
}

// completeCommit does what an interrupted commit w of key k left undone
// after its key write: the log entries not yet appended (marked as
// recovered), the alerts not yet stored, and the deletion of index entries
// the record does not hold.
func (b *apikeysBackend) completeCommit(ctx context.Context, s logical.Storage, k *record.Key, w walIndex) error {
	if len(w.Alerts) > 0 {
		defer b.gov.LockAlertWrite()()
	}
	if err := b.log.AppendMissing(ctx, s, w.Events, w.LogFrom, time.Unix(0, w.At).Add(-logScanSlack)); err != nil {
		return err
	}
	if err := b.storeMissingAlerts(ctx, s, w.Alerts); err != nil {
		return err
	}
	return b.deleteUnheldIndexEntries(ctx, s, k, w)
}

// storeMissingAlerts stores the alerts of an interrupted commit that are
// not stored yet (one that is may have been acknowledged since: it stays).
func (b *apikeysBackend) storeMissingAlerts(ctx context.Context, s logical.Storage, bodies []string) error {
	for _, body := range bodies {
		var a record.Alert
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return fmt.Errorf("decoding an alert of an interrupted key change: %w", err)
		}
		got, err := getAlert(ctx, s, a.ID)
		if err != nil {
			return err
		}
		if got != nil {
			continue
		}
		if err := putAlert(ctx, s, &a); err != nil {
			return err
		}
		b.logAlert(&a)
	}
	return nil
}

// logScanSlack widens the search for a change's log entries: an event's
// time is taken when it is built, a moment before its commit starts, and
// entries are not strictly in time order (alerts carry the time they were
// detected, up to a tick or two before they are logged). The search by
// time runs only when recovering a change whose WAL entry, written by an
// older version, lacks LogFrom.
const logScanSlack = 15 * time.Minute

// deleteUnheldIndexEntries deletes the index entries named by w whose HMAC
// key record k (nil: gone) does not hold.
func (b *apikeysBackend) deleteUnheldIndexEntries(ctx context.Context, s logical.Storage, k *record.Key, w walIndex) error {
	held := map[string]bool{}
	if k != nil {
		for _, v := range k.Versions {
			held[v.HMAC] = true
		}
	}
	for _, h := range w.HMACs {
		if held[h] {
			continue
		}
		if err := s.Delete(ctx, indexStorageKey(h)); err != nil {
			return err
		}
		b.cache.invalidate(indexStorageKey(h))
		b.logger.Info("rolled back an index entry of an interrupted key change", "client", w.Client, "key", w.Name)
	}
	return nil
}

// walRollback finishes or undoes an interrupted commitKey (Vault calls it
// for WAL entries older than walRollbackMinAge and deletes the entry when
// it returns nil).
func (b *apikeysBackend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind != walKindIndex {
		return fmt.Errorf("unknown WAL kind %q", kind)
	}
	var w walIndex
	if err := mapstructure.Decode(data, &w); err != nil {
		return err
	}
	defer b.locks.lockKey(w.Client, w.Name)()
	return b.settleLocked(ctx, req.Storage, w)
}

// settleLocked finishes or undoes interrupted commit w; the caller holds
// the key's lock.
func (b *apikeysBackend) settleLocked(ctx context.Context, s logical.Storage, w walIndex) error {
	k, err := b.getKey(ctx, s, w.Client, w.Name)
	if err != nil {
		return err
	}
	if k != nil && w.Commit != "" && k.LastCommit == w.Commit {
		// The key write happened: finish the change.
		return b.completeCommit(ctx, s, k, w)
	}
	// The change never reached the key record: undo its index entries.
	return b.deleteUnheldIndexEntries(ctx, s, k, w)
}

// settleWALs finishes or undoes, at once, every key change that another
// backend instance left interrupted (its WAL entry is still there), so
// right after a crash and restart no index entry points at a change that
// did not happen and no change lacks its log entries. This instance's own
// commits in flight are left alone (see walIndex.Owner). It returns how
// many entries it settled.
func (b *apikeysBackend) settleWALs(ctx context.Context, s logical.Storage) (int, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("listing WAL: %w", err)
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		done, err := b.settleWAL(ctx, s, id)
		if err != nil {
			return n, fmt.Errorf("WAL entry %s: %w", id, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

func (b *apikeysBackend) settleWAL(ctx context.Context, s logical.Storage, id string) (bool, error) {
	entry, err := framework.GetWAL(ctx, s, id)
	if err != nil || entry == nil || entry.Kind != walKindIndex {
		return false, err
	}
	var w walIndex
	if err := mapstructure.Decode(entry.Data, &w); err != nil {
		return false, err
	}
	if w.Owner == b.rot.instance {
		return false, nil // a commit of this instance, possibly in flight
	}
	defer b.locks.lockKey(w.Client, w.Name)()
	// Read again under the lock: the key's next change may have finished
	// it meanwhile (finishInterruptedCommit).
	if entry, err = framework.GetWAL(ctx, s, id); err != nil || entry == nil {
		return false, err
	}
	if err := b.settleLocked(ctx, s, w); err != nil {
		return false, err
	}
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		return false, err
	}
	b.noteSettled(id, w)
	b.logger.Info("settled a key change left interrupted by an earlier process", "client", w.Client, "key", w.Name)
	return true, nil
}

// newInstanceID returns a random id for a backend instance; should the
// system's random source fail, the time keeps instances apart.
func newInstanceID() string {
	if id, err := randomHex(16); err == nil {
		return id
	}
	return strconv.FormatInt(time.Now().UnixNano(), 36)
}

// maxSettledKept bounds the commits settled at start that are remembered
// for finishInterrupted.
const maxSettledKept = 1000

// noteSettled remembers commit w (WAL entry id) settled at start, so that
// the key's next change can still tell which commit it was.
func (b *apikeysBackend) noteSettled(id string, w walIndex) {
	r := &b.rot
	r.settledMu.Lock()
	defer r.settledMu.Unlock()
	if r.settled == nil {
		r.settled = map[string]walIndex{}
	}
	if len(r.settled) < maxSettledKept {
		r.settled[id] = w
	}
}

// takeSettled returns (once) the commit of k settled at start, if its key
// record names it; nil otherwise. The caller holds the key's lock.
func (b *apikeysBackend) takeSettled(k *record.Key) *walIndex {
	r := &b.rot
	r.settledMu.Lock()
	defer r.settledMu.Unlock()
	w, ok := r.settled[k.LastWAL]
	if !ok {
		return nil
	}
	delete(r.settled, k.LastWAL)
	if w.Commit != k.LastCommit {
		return nil
	}
	return &w
}
