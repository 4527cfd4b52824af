package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
)

// Storage layout (see doc.go).
const (
	storageEntries = "log/entries/"
	storageHead    = "log/head"
)

// Entry is a log entry as stored. Event keeps the exact bytes appended so
// the hash is recomputed over what was written, not over a re-encoding.
type Entry struct {
	Seq   uint64          `json:"seq"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

// Head is the stored record of the newest entry: how many entries the
// chain has and the hash of the last one.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// ErrUnreadable is the error of a stored entry that no longer decodes,
// which only an alteration of storage produces.
var ErrUnreadable = errors.New("not readable")

// errEntryTooLarge is the error of an entry above the bound given to New.
var errEntryTooLarge = errors.New("too large to store")

// Log appends to and reads the lifecycle log of one mount. Its zero value
// is not usable: build it with New.
type Log struct {
	clock         clock.Clock
	maxEntryBytes int

	// mu serialises appends: each reads the head, writes the entry after
	// it and moves the head, and two appends in between would both take
	// the same sequence number. It is held for no other work, so it nests
	// inside any lock of the caller.
	mu sync.Mutex

	// appended, when set, is told of every append (without blocking):
	// the outbox delivers what the log gains.
	appended func()
	// queue holds appends waiting for the next commit (queueMu guards
	// it; it is never held with I/O).
	queueMu sync.Mutex
	queue   []*pendingAppend
	// appendHead is the head as this process's last append left it, so
	// an append reads no head from storage (one round trip fewer, inside
	// mu, which every append of the mount waits on). Only an append, under
	// mu, sets it: a reader's head could be older than an append running
	// beside it. Vault sends writes only to the active node, and a plugin
	// reload or a node becoming active starts a new process, so no other
	// writer moves the head under it; Invalidate drops it all the same.
	appendHead atomic.Pointer[Head]
	// seen is the highest sequence number this process has read in or
	// written to the head. The log only grows, so it never exceeds the
	// stored head: NextSeq answers from it without a storage read.
	seen atomic.Uint64
}

// noteSeen raises seen to seq.
func (l *Log) noteSeen(seq uint64) {
	for {
		cur := l.seen.Load()
		if seq <= cur || l.seen.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// NextSeq returns a sequence number no greater than the one the next
// append will take: a change that notes it before its appends finds its
// entries, if any were written, at or after it. It reads the head only
// until this process has seen one.
func (l *Log) NextSeq(ctx context.Context, s logical.Storage) (uint64, error) {
	if seen := l.seen.Load(); seen > 0 {
		return seen + 1, nil
	}
	head, err := l.Head(ctx, s)
	if err != nil {
		return 0, err
	}
	return head.Seq + 1, nil
}

// OnAppend sets f to be called after each append; f must not block. Set
// it before the log is used.
func (l *Log) OnAppend(f func()) { l.appended = f }

// New returns the log of a mount: events without a time are stamped with
// clk, and an entry above maxEntryBytes is refused (the bound every record
// the mount stores obeys).
func New(clk clock.Clock, maxEntryBytes int) *Log {
	return &Log{clock: clk, maxEntryBytes: maxEntryBytes}
}

func entryKey(seq uint64) string { return fmt.Sprintf("%s%020d", storageEntries, seq) }

// Append links ev to the chain and stores it (see Encode and AppendBody).
func (l *Log) Append(ctx context.Context, s logical.Storage, ev Event) error {
	body, err := Encode(ev, l.clock.Now())
	if err != nil {
		return err
	}
	return l.AppendBody(ctx, s, body)
}

// AppendBody appends an event already encoded by Encode and returns once
// it is stored and counted by the head. Appends arriving while another is
// being stored are committed together by the next one to take the lock
// (group commit): their entries are written side by side, then the head
// once, so a burst costs two storage round trips under the lock, not two
// an entry. Entries are written before the head, so a crash in between
// leaves entries the head does not count, which later appends overwrite.
func (l *Log) AppendBody(ctx context.Context, s logical.Storage, body []byte) error {
	p := &pendingAppend{body: body, done: make(chan error, 1)}
	l.queueMu.Lock()
	l.queue = append(l.queue, p)
	l.queueMu.Unlock()
	l.mu.Lock()
	select {
	case err := <-p.done: // an append before took it
		l.mu.Unlock()
		return err
	default:
	}
	l.queueMu.Lock()
	batch := l.queue
	l.queue = nil
	l.queueMu.Unlock()
	// The batch holds other callers' entries: one caller's cancelled
	// request must not fail theirs.
	l.commit(context.WithoutCancel(ctx), s, batch)
	l.mu.Unlock()
	return <-p.done
}

// pendingAppend is one caller's entry waiting for a commit.
type pendingAppend struct {
	body []byte
	done chan error
}

// commit stores a batch of appends under mu and tells each caller its
// outcome. The head moves over the entries stored without a gap; an entry
// after a failed one is not counted and its caller gets an error.
func (l *Log) commit(ctx context.Context, s logical.Storage, batch []*pendingAppend) {
	tell := func(ps []*pendingAppend, err error) {
		for _, p := range ps {
			p.done <- err
		}
	}
	var head Head
	if cached := l.appendHead.Load(); cached != nil {
		head = *cached
	} else {
		var err error
		if head, err = l.Head(ctx, s); err != nil {
			tell(batch, err)
			return
		}
	}
	var (
		linked  []*pendingAppend
		entries []*logical.StorageEntry
		heads   []Head // the head after each linked entry
		next    = head
	)
	for _, p := range batch {
		rec := Entry{Seq: next.Seq + 1, Prev: next.Hash, Event: p.body}
		rec.Hash = hashchain.Hash(rec.Seq, rec.Prev, p.body)
		entry, err := logical.StorageEntryJSON(entryKey(rec.Seq), rec)
		if err == nil && len(entry.Value) > l.maxEntryBytes {
			err = fmt.Errorf("storing log entry: %d bytes is %w (at most %d)", len(entry.Value), errEntryTooLarge, l.maxEntryBytes)
		}
		if err != nil {
			p.done <- err // refused before it took a sequence number
			continue
		}
		linked = append(linked, p)
		entries = append(entries, entry)
		next = Head{Seq: rec.Seq, Hash: rec.Hash}
		heads = append(heads, next)
	}
	if len(linked) == 0 {
		return
	}
	errs := make([]error, len(entries))
	if len(entries) == 1 {
		// The common case, an append nobody waited behind: no goroutine.
		errs[0] = s.Put(ctx, entries[0])
	} else {
		var wg sync.WaitGroup
		for i, entry := range entries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Put(ctx, entry)
			}()
		}
		wg.Wait()
	}
	stored := len(entries)
	for i, err := range errs {
		if err != nil {
			stored = i
			break
		}
	}
	for i := stored; i < len(linked); i++ {
		err := errs[i]
		if err == nil {
			err = errs[stored]
		}
		linked[i].done <- fmt.Errorf("storing log entry: %w", err)
	}
	if stored == 0 {
		return
	}
	newHead := heads[stored-1]
	headEntry, err := logical.StorageEntryJSON(storageHead, newHead)
	if err == nil {
		err = s.Put(ctx, headEntry)
	}
	if err != nil {
		tell(linked[:stored], fmt.Errorf("writing log head: %w", err))
		return
	}
	l.appendHead.Store(&newHead)
	l.noteSeen(newHead.Seq)
	if l.appended != nil {
		l.appended()
	}
	tell(linked[:stored], nil)
}

// Invalidate drops what the log keeps in memory of key when another node
// or process changed it (Vault's InvalidateFunc).
func (l *Log) Invalidate(key string) {
	if key == storageHead {
		l.appendHead.Store(nil)
	}
}

// Head returns the head of the chain (sequence 0 and the genesis hash for
// an empty log).
func (l *Log) Head(ctx context.Context, s logical.Storage) (Head, error) {
	head := Head{Hash: hashchain.Genesis}
	entry, err := s.Get(ctx, storageHead)
	if err != nil {
		return head, fmt.Errorf("reading log head: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&head); err != nil {
			return head, fmt.Errorf("decoding log head: %w", err)
		}
	}
	l.noteSeen(head.Seq)
	return head, nil
}

// Entry returns the stored entry with sequence number seq, or nil.
func (l *Log) Entry(ctx context.Context, s logical.Storage, seq uint64) (*Entry, error) {
	entry, err := s.Get(ctx, entryKey(seq))
	if err != nil || entry == nil {
		return nil, err
	}
	var rec Entry
	if err := entry.DecodeJSON(&rec); err != nil {
		return nil, fmt.Errorf("log entry %d is %w: %v", seq, ErrUnreadable, err)
	}
	return &rec, nil
}

// RawEntry returns entry seq exactly as stored (JSON of Entry), or nil:
// an export that keeps the bytes lets an auditor recompute its hash.
func (l *Log) RawEntry(ctx context.Context, s logical.Storage, seq uint64) ([]byte, error) {
	entry, err := s.Get(ctx, entryKey(seq))
	if err != nil || entry == nil {
		return nil, err
	}
	return entry.Value, nil
}

// Verify recomputes the whole chain kept in storage (from the first entry
// not archived), up to the head read when it starts; entries appended
// meanwhile are left for the next run.
func (l *Log) Verify(ctx context.Context, s logical.Storage) (hashchain.Result, error) {
	base, err := l.Base(ctx, s)
	if err != nil {
		return hashchain.Result{}, err
	}
	prev := hashchain.Genesis
	if base.Seq > 0 {
		prev = base.Hash
	}
	res, _, err := l.VerifyPage(ctx, s, base.Seq, prev, -1)
	return res, err
}

// VerifyPage recomputes the chain from entry from+1, whose predecessor has
// hash prev (0 and hashchain.Genesis: from the start), reading at most
// limit entries (no bound when negative). Result.Entries counts the page's
// entries. When the page reaches the head read at its start, the head
// record is compared too (complete is then true).
func (l *Log) VerifyPage(ctx context.Context, s logical.Storage, from uint64, prev string, limit int) (res hashchain.Result, head Head, err error) {
	head, err = l.Head(ctx, s)
	if err != nil {
		return res, head, err
	}
	v := hashchain.ResumeVerifier(from+1, prev)
	seq := from + 1
	for ; seq <= head.Seq && (limit < 0 || seq-from <= uint64(limit)); seq++ {
		entry, err := s.Get(ctx, entryKey(seq))
		if err != nil {
			return res, head, err
		}
		if entry == nil {
			v.Fail(seq, fmt.Sprintf("entry %d is missing", seq))
			break
		}
		var rec Entry
		if err := entry.DecodeJSON(&rec); err != nil {
			// An entry that no longer decodes was altered.
			v.Fail(seq, fmt.Sprintf("entry %d is not readable", seq))
			break
		}
		v.Add(hashchain.Link{Seq: rec.Seq, Prev: rec.Prev, Hash: rec.Hash, Body: rec.Event})
	}
	if seq > head.Seq {
		return v.FinishAt(from, head.Seq, head.Hash), head, nil
	}
	return v.Result(), head, nil
}
