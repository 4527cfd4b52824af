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

// AppendBody appends an event already encoded by Encode. The entry is
// written before the head, so a crash in between leaves an entry the head
// does not count, which the next append overwrites.
func (l *Log) AppendBody(ctx context.Context, s logical.Storage, body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var head Head
	if cached := l.appendHead.Load(); cached != nil {
		head = *cached
	} else {
		var err error
		if head, err = l.Head(ctx, s); err != nil {
			return err
		}
	}
	rec := Entry{Seq: head.Seq + 1, Prev: head.Hash, Event: body}
	rec.Hash = hashchain.Hash(rec.Seq, rec.Prev, body)
	entry, err := logical.StorageEntryJSON(entryKey(rec.Seq), rec)
	if err != nil {
		return err
	}
	if n := len(entry.Value); n > l.maxEntryBytes {
		return fmt.Errorf("storing log entry: %d bytes is %w (at most %d)", n, errEntryTooLarge, l.maxEntryBytes)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing log entry: %w", err)
	}
	headEntry, err := logical.StorageEntryJSON(storageHead, Head{Seq: rec.Seq, Hash: rec.Hash})
	if err != nil {
		return err
	}
	if err := s.Put(ctx, headEntry); err != nil {
		return fmt.Errorf("writing log head: %w", err)
	}
	l.appendHead.Store(&Head{Seq: rec.Seq, Hash: rec.Hash})
	l.noteSeen(rec.Seq)
	if l.appended != nil {
		l.appended()
	}
	return nil
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
