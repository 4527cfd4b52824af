package eventlog

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage of archival: the point up to which entries were archived, and
// how far their removal got.
const (
	storageBase    = "log/base"
	storageRemoved = "log/archive/removed"
)

// Base is the archived part of the log: entries 1..Seq were exported by an
// operator and are removed from storage; Hash is entry Seq's chain hash,
// from which verification of what is kept starts.
type Base struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Base returns the archived part (Seq 0 when nothing was archived).
func (l *Log) Base(ctx context.Context, s logical.Storage) (Base, error) {
	var b Base
	entry, err := s.Get(ctx, storageBase)
	if err != nil {
		return b, fmt.Errorf("reading the log base: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&b); err != nil {
			return b, fmt.Errorf("decoding the log base: %w", err)
		}
	}
	return b, nil
}

// SetBase moves the archived part to b; PruneArchived then removes the
// entries in steps.
func (l *Log) SetBase(ctx context.Context, s logical.Storage, b Base) error {
	entry, err := logical.StorageEntryJSON(storageBase, b)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing the log base: %w", err)
	}
	return nil
}

// PruneArchived removes up to budget archived entries not yet removed
// and returns how many it removed. Its cursor is stored after each step,
// so it resumes after a restart or failover.
func (l *Log) PruneArchived(ctx context.Context, s logical.Storage, budget int) (int, error) {
	base, err := l.Base(ctx, s)
	if err != nil || base.Seq == 0 {
		return 0, err
	}
	var removed Base
	entry, err := s.Get(ctx, storageRemoved)
	if err != nil {
		return 0, fmt.Errorf("reading the archive cursor: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&removed); err != nil {
			return 0, fmt.Errorf("decoding the archive cursor: %w", err)
		}
	}
	n := 0
	for seq := removed.Seq + 1; seq <= base.Seq && n < budget; seq++ {
		if err := s.Delete(ctx, entryKey(seq)); err != nil {
			return n, fmt.Errorf("removing archived log entry %d: %w", seq, err)
		}
		removed.Seq = seq
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if entry, err = logical.StorageEntryJSON(storageRemoved, Base{Seq: removed.Seq}); err != nil {
		return n, err
	}
	if err := s.Put(ctx, entry); err != nil {
		return n, fmt.Errorf("writing the archive cursor: %w", err)
	}
	return n, nil
}
