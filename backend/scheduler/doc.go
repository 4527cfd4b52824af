// Package scheduler runs background work on items at their due time in
// budgeted passes: a Runner holds a queue of ids by due time and, once per
// pass, pops what is due and hands it to the caller's work; a Rebuild fills
// runners from storage in the background when the mount starts.
//
// The backend has two such jobs on keys, scheduled rotation (with the end
// of grace periods and hard expiry) and the purge of dead leased keys, and
// both need the same machine: a periodic tick must cost O(due), never
// O(keys), so the due times near at hand are kept in memory (a heap,
// O(log n) per change) instead of scanning storage; a pass must stay well
// under Vault's request deadline and not hold up the other periodic work,
// so it stops at a budget of real time or a number of items and leaves the
// rest queued for the next pass (Result.Leftover says so). A pass with
// nothing due costs two stopwatch readings and one look at the top of the
// heap, however many items are queued. The ids are opaque; what an item
// stands for, and what is done with it, stays with the caller: the
// backend's per-key work needs its key locks, the WAL-ordered commit and
// the log.
//
// Two clocks, on purpose. Due-ness is domain time: the caller passes the
// horizon of a pass (the backend's clock, which tests move by hand; for the
// purge, now minus the retention, so a change of the retention needs no
// re-queueing). The budget is real elapsed time, read from a stopwatch
// (time.Now unless WithStopwatch replaces it): it guards against real
// seconds spent on storage, and a frozen domain clock would never use it
// up. Tests choose the limits and the stopwatch when the runner is built;
// nothing is changed on a live runner.
//
// The queue is a cache of storage and may be stale or early: the caller
// re-reads an item's record before acting and does only what the record
// calls for. Callers keep it current by calling Schedule after every change
// of what an item stands for (a zero due time drops the item); the backend
// does so from one hook after every committed key change. A failed item is
// queued again in one of two ways: by Schedule at now plus a delay, called
// by the caller under the lock that orders its changes of the item, so no
// concurrent change is overwritten (rotation); or by Pass.Later, which
// queues it at its own due time once the pass is over, so this pass does not
// pop it again, and leaves it alone if a change queued it meanwhile (purge).
//
// Nothing is persisted here; the queues need not hold every item. The
// backend keeps the due times in storage as well, in an index of hourly
// buckets (backend/schedule_index.go), and holds in memory only the items
// due within an hour or two: when the mount starts (a restart, or another
// node taking over as active after a failover or seal) the queues are empty
// and a Rebuild loads, in the background, the buckets up to that horizon,
// so a large mount starts at once and its start reads what is due, not
// every item; verify never consults the queues (it judges a key by its
// stored record alone), so it keeps answering throughout. Passes meanwhile
// handle what is queued. What a load reads from storage may be stale, so it
// queues with Earlier, which never makes an item later than a due time
// already queued (early costs the caller a re-read; late could hold an item
// back); Offer, which never overwrites a due time set meanwhile, serves a
// caller that re-queues an item it just read. Work an earlier process left
// half-done is found again because its items are derived from storage, not
// remembered. A failed load is started again by Retry (the backend calls it
// at every rotation tick) rather than leaving items unqueued until the next
// restart.
//
// Concurrency: a Runner and a Rebuild are safe for concurrent use. The
// queue has its own mutex and every operation on it is short. A runner runs
// one pass at a time: Begin waits for the previous pass to End, so a tidy
// call and the periodic tick never work on the same batch, and the caller
// may read what its pass needs between Begin and Run, or count what is left
// before End, without another pass interleaving. The step runs with the
// pass held and may take the caller's own locks; Schedule, Offer, Earlier
// and Remove never wait for a pass, so a hook under a key lock cannot deadlock with it.
package scheduler
