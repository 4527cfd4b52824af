package logtree

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
)

const storageState = "log/tree/state"

// State is how far the tree, and so the verified chain, reaches.
type State struct {
	// Size is the number of entries in the tree: entries 1..Size link up
	// and match their hashes.
	Size uint64 `json:"size"`
	// LastHash is the chain hash of entry Size (hashchain.Genesis at 0).
	LastHash string `json:"last_hash"`
	// BrokenAt, when set, is the entry that failed the check; the tree
	// stays at the entry before it.
	BrokenAt uint64 `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Progress is a State with the log head it was compared with.
type Progress struct {
	State
	HeadSeq uint64
	// Added is how many entries this step added.
	Added int
}

// Log is what the tree reads of the lifecycle log.
type Log interface {
	Head(ctx context.Context, s logical.Storage) (eventlog.Head, error)
	Entry(ctx context.Context, s logical.Storage, seq uint64) (*eventlog.Entry, error)
}

// ErrBeyondTree is the error of a proof asked for a size or entry the
// tree does not reach yet.
var ErrBeyondTree = errors.New("beyond the verified tree")

// Tree is the Merkle tree of one mount's log. Build it with New.
type Tree struct {
	log    Log
	origin func() string
	mu     sync.Mutex
}

// New returns the tree over log. origin names the log in checkpoints the
// first time a signing key is made; it is stored with the key after.
func New(log Log, origin func() string) *Tree {
	return &Tree{log: log, origin: origin}
}

// State reads the stored state (size 0 before the first step).
func (t *Tree) State(ctx context.Context, s logical.Storage) (State, error) {
	st := State{LastHash: hashchain.Genesis}
	entry, err := s.Get(ctx, storageState)
	if err != nil {
		return st, fmt.Errorf("reading log tree state: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&st); err != nil {
			return st, fmt.Errorf("decoding log tree state: %w", err)
		}
	}
	return st, nil
}

// Grow checks and adds up to budget entries past the tree's size. Its
// cost is the entries it adds: one read each, and one write per 256
// stored hashes.
func (t *Tree) Grow(ctx context.Context, s logical.Storage, budget int) (Progress, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grow(ctx, s, budget)
}

func (t *Tree) grow(ctx context.Context, s logical.Storage, budget int) (Progress, error) {
	st, err := t.State(ctx, s)
	if err != nil {
		return Progress{}, err
	}
	head, err := t.log.Head(ctx, s)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{State: st, HeadSeq: head.Seq}
	if st.BrokenAt != 0 {
		return p, nil
	}
	if head.Seq < st.Size {
		// The head was moved back past verified entries: the newest
		// entries were removed.
		st.BrokenAt = head.Seq + 1
		st.Reason = fmt.Sprintf("log head records %d entries but %d were verified before (entries removed or head altered)", head.Seq, st.Size)
		p.State = st
		return p, t.saveState(ctx, s, st)
	}
	hs := newHashStore(ctx, s)
	count := tlog.StoredHashCount(int64(st.Size))
	v := hashchain.ResumeVerifier(st.Size+1, st.LastHash)
	for seq := st.Size + 1; seq <= head.Seq && p.Added < budget; seq++ {
		if err := ctx.Err(); err != nil {
			break
		}
		e, err := t.log.Entry(ctx, s, seq)
		if err != nil {
			if !errors.Is(err, eventlog.ErrUnreadable) {
				return p, err
			}
			v.Fail(seq, fmt.Sprintf("entry %d is not readable", seq))
		} else if e == nil {
			v.Fail(seq, fmt.Sprintf("entry %d is missing", seq))
		} else {
			v.Add(hashchain.Link{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Body: e.Event})
		}
		if res := v.Result(); !res.Valid {
			// The position read, which a reordered entry does not name.
			st.BrokenAt, st.Reason = seq, res.Reason
			break
		}
		raw, err := hex.DecodeString(e.Hash)
		if err != nil {
			return p, fmt.Errorf("log entry %d hash: %w", seq, err)
		}
		hashes, err := tlog.StoredHashesForRecordHash(int64(seq-1), tlog.RecordHash(raw), hs)
		if err != nil {
			return p, err
		}
		if err := hs.append(count, hashes); err != nil {
			return p, err
		}
		count += int64(len(hashes))
		st.Size, st.LastHash = seq, e.Hash
		p.Added++
	}
	// Hashes first, then the state that counts them: a crash in between
	// leaves hashes past the count, which the next step overwrites.
	if err := hs.flush(); err != nil {
		return p, err
	}
	p.State = st
	if p.Added == 0 && st.BrokenAt == 0 {
		return p, nil
	}
	return p, t.saveState(ctx, s, st)
}

func (t *Tree) saveState(ctx context.Context, s logical.Storage, st State) error {
	entry, err := logical.StorageEntryJSON(storageState, st)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing log tree state: %w", err)
	}
	return nil
}

// within checks that size is a tree the stored hashes cover.
func (t *Tree) within(ctx context.Context, s logical.Storage, size uint64) error {
	st, err := t.State(ctx, s)
	if err != nil {
		return err
	}
	if size < 1 || size > st.Size {
		return fmt.Errorf("tree size %d is %w (1 to %d)", size, ErrBeyondTree, st.Size)
	}
	return nil
}

// Root returns the root hash of the tree of the first size entries.
func (t *Tree) Root(ctx context.Context, s logical.Storage, size uint64) (tlog.Hash, error) {
	if err := t.within(ctx, s, size); err != nil {
		return tlog.Hash{}, err
	}
	return tlog.TreeHash(int64(size), newHashStore(ctx, s))
}

// LeafHash returns the tree's leaf for entry seq.
func (t *Tree) LeafHash(ctx context.Context, s logical.Storage, seq uint64) (tlog.Hash, error) {
	if err := t.within(ctx, s, seq); err != nil {
		return tlog.Hash{}, err
	}
	h, err := newHashStore(ctx, s).ReadHashes([]int64{tlog.StoredHashIndex(0, int64(seq-1))})
	if err != nil {
		return tlog.Hash{}, err
	}
	return h[0], nil
}

// Inclusion proves that entry seq is leaf seq-1 of the tree of size
// entries (RFC 9162 §2.1.3).
func (t *Tree) Inclusion(ctx context.Context, s logical.Storage, seq, size uint64) ([]tlog.Hash, error) {
	if err := t.within(ctx, s, size); err != nil {
		return nil, err
	}
	if seq < 1 || seq > size {
		return nil, fmt.Errorf("entry %d is not in a tree of %d entries: %w", seq, size, ErrBeyondTree)
	}
	return tlog.ProveRecord(int64(size), int64(seq-1), newHashStore(ctx, s))
}

// Consistency proves that the tree of from entries is a prefix of the tree
// of to entries (RFC 9162 §2.1.4).
func (t *Tree) Consistency(ctx context.Context, s logical.Storage, from, to uint64) ([]tlog.Hash, error) {
	if err := t.within(ctx, s, to); err != nil {
		return nil, err
	}
	if from < 1 || from > to {
		return nil, fmt.Errorf("size %d is not between 1 and %d: %w", from, to, ErrBeyondTree)
	}
	return tlog.ProveTree(int64(to), int64(from), newHashStore(ctx, s))
}
