package usage

import (
	"context"
	"errors"
	"time"
)

// A flush takes on the whole backlog it finds, oldest first: one storage
// write per key verified since the previous flush. A fixed batch per tick
// lets the buffer fill up as soon as more distinct keys are verified per
// minute than the batch; then it stays full and later keys' uses are lost.
// Only a time budget stops a flush early, so that it never holds up the
// rest of the periodic work (Vault cancels a periodic run after 90 s); what
// is left is flushed first next time. When storage cannot keep up even so,
// the buffer degrades as doc.go describes and the losses are logged.

const (
	// flushBudget bounds the time one flush spends writing; with the
	// lease purge's 15 s and the sweep it stays well within Vault's 90 s.
	flushBudget = 20 * time.Second
	// flushChunk is how many snapshots are taken under the tracker's
	// mutex at a time, so verify never waits long for it.
	flushChunk = 500
	// maxFlushErrors stops a flush after that many failed writes
	// (storage is failing: the rest waits for the next tick).
	maxFlushErrors = 10
)

// flushLimits are the flush's time source and budget; tests replace them
// (the backend's clock is domain time, which tests freeze).
type flushLimits struct {
	stopwatch func() time.Time
	budget    time.Duration
}

// Snapshot is a copy of a key's buffered usage taken for a flush.
type Snapshot struct {
	// KeyID is the key the usage was recorded for; Client and Name locate
	// its record. The record found there may be a newer key of the same
	// name: the caller checks KeyID before merging.
	KeyID, Client, Name string

	entry entry
	// spilled: taken from spill, so only lastUsed and one version are set.
	spilled bool
}

// Flush hands buffered usage, oldest first, to persist, which merges one
// snapshot into its key record (MergeInto) under the key's lock and
// stores it; a snapshot persisted is forgotten, one that failed stays for
// the next flush. Flush first logs what the buffer lost since the last
// one. It stops at its time budget, at ctx's end and after repeated
// failures, returning the errors. Flushes may run concurrently with each
// other and with Record; persist is called without the tracker's mutex.
func (u *Tracker) Flush(ctx context.Context, persist func(Snapshot) error) error {
	u.reportLosses()
	u.mu.Lock()
	lim, log := u.flushLimits, u.log
	u.mu.Unlock()
	start := lim.stopwatch()
	backlog := u.Backlog() // not what is requeued meanwhile: once per flush
	var errs []error
	for done := 0; done < backlog; {
		if lim.stopwatch().Sub(start) >= lim.budget {
			log.Warn("usage flush stopped at its time budget; the rest is flushed next time",
				"flushed", done, "left", backlog-done, "budget", lim.budget.String())
			break
		}
		batch := u.snapshots(min(flushChunk, backlog-done))
		if len(batch) == 0 {
			break
		}
		done += len(batch)
		for i, sn := range batch {
			if err := ctx.Err(); err != nil {
				u.unflushed(batch[i:]...)
				return errors.Join(append(errs, err)...)
			}
			if lim.stopwatch().Sub(start) >= lim.budget {
				// Slow storage: stop within the budget, not a chunk later.
				u.unflushed(batch[i:]...)
				log.Warn("usage flush stopped at its time budget; the rest is flushed next time",
					"left", backlog-done+len(batch)-i, "budget", lim.budget.String())
				return errors.Join(errs...)
			}
			if err := persist(sn); err != nil {
				u.unflushed(sn)
				if errs = append(errs, err); len(errs) >= maxFlushErrors {
					u.unflushed(batch[i+1:]...)
					return errors.Join(errs...)
				}
				continue
			}
			u.flushed(sn)
		}
	}
	return errors.Join(errs...)
}

// snapshots takes up to max keys off the front of the queue and copies
// their usage. The caller must hand every snapshot back through flushed
// (persisted) or unflushed (not persisted).
func (u *Tracker) snapshots(max int) []Snapshot {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Snapshot, 0, min(max, u.queue.len()))
	for len(out) < max {
		id, ok := u.queue.pop()
		if !ok {
			break
		}
		if e := u.entries[id]; e != nil {
			cp := *e
			cp.sources = append([]string(nil), e.sources...)
			out = append(out, Snapshot{KeyID: id, Client: e.client, Name: e.name, entry: cp})
		} else if sp, ok := u.spill[id]; ok {
			cp := entry{client: sp.client, name: sp.name, lastUsed: sp.at}
			cp.verified(int(sp.version), sp.at)
			out = append(out, Snapshot{KeyID: id, Client: sp.client, Name: sp.name, entry: cp, spilled: true})
		}
	}
	return out
}

// flushed forgets what a snapshot persisted. An entry unchanged since the
// snapshot is dropped (the key gets a new one on its next verify); one
// that changed keeps its times (not older than what was stored) and the
// counts that came in after the snapshot, and is queued again.
func (u *Tracker) flushed(sn Snapshot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if sn.spilled {
		if sp, ok := u.spill[sn.KeyID]; ok && sp.at == sn.entry.lastUsed {
			delete(u.spill, sn.KeyID)
		}
	} else if e := u.entries[sn.KeyID]; e != nil {
		if e.seq == sn.entry.seq {
			delete(u.entries, sn.KeyID)
		} else {
			for i := range e.counts {
				e.counts[i] -= sn.entry.counts[i]
			}
		}
	}
	u.requeueLocked(sn.KeyID)
}

// unflushed puts back snapshots that were not persisted; they are flushed
// again by a later flush.
func (u *Tracker) unflushed(sns ...Snapshot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, sn := range sns {
		u.requeueLocked(sn.KeyID)
	}
}

// requeueLocked queues a key id taken by a flush if usage is still
// buffered for it.
func (u *Tracker) requeueLocked(id string) {
	_, inSpill := u.spill[id]
	if u.entries[id] != nil || inSpill {
		u.queue.push(id)
	}
}
