package backend

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// A backfill writes, once, the index entries that this version writes as it
// goes (key-id pointers, tombstone pointers) for records stored before the
// index existed: a bounded step per periodic tick, its cursor and its end
// kept in storage so a restart or another active node carries on. Until it
// ends a reader must fall back to the scan the index spares it; after it,
// a missing entry means there is no such record.
type backfill struct {
	storageKey string // where the state is kept
	what       string // for errors and the log
	// done caches the end, which is never undone.
	done *atomic.Bool
	// step writes the missing entries after cursor, a bounded number of
	// records read, and returns the cursor to continue from ("" at the
	// end) and how many entries it wrote. Redoing a step after a crash
	// must write the same entries again.
	step func(ctx context.Context, s logical.Storage, cursor string) (string, int, error)
}

type backfillState struct {
	Cursor  string `json:"cursor,omitempty"`
	Written int    `json:"written"`
	Done    bool   `json:"done"`
}

func (f backfill) state(ctx context.Context, s logical.Storage) (*backfillState, error) {
	st, err := getJSON[backfillState](ctx, s, f.storageKey, f.what)
	if err != nil || st == nil {
		return &backfillState{}, err
	}
	return st, nil
}

// finished reports whether every record has its entry.
func (f backfill) finished(ctx context.Context, s logical.Storage) (bool, error) {
	if f.done.Load() {
		return true, nil
	}
	st, err := f.state(ctx, s)
	if err != nil {
		return false, err
	}
	if st.Done {
		f.done.Store(true)
	}
	return st.Done, nil
}

// end marks the backfill ended without walking: the caller knows there is
// no record without its index entry.
func (f backfill) end(ctx context.Context, s logical.Storage) error {
	if done, err := f.finished(ctx, s); err != nil || done {
		return err
	}
	return f.save(ctx, s, &backfillState{Done: true})
}

// save stores st, and caches its end.
func (f backfill) save(ctx context.Context, s logical.Storage, st *backfillState) error {
	if err := putJSON(ctx, s, f.storageKey, f.what, st); err != nil {
		return err
	}
	if st.Done {
		f.done.Store(true)
	}
	return nil
}

// tick runs the next step unless the backfill has ended.
func (f backfill) tick(ctx context.Context, s logical.Storage, logger hclog.Logger) error {
	if done, err := f.finished(ctx, s); err != nil || done {
		return err
	}
	st, err := f.state(ctx, s)
	if err != nil {
		return err
	}
	cursor, written, err := f.step(ctx, s, st.Cursor)
	if err != nil {
		return err
	}
	st.Cursor, st.Written, st.Done = cursor, st.Written+written, cursor == ""
	if err := f.save(ctx, s, st); err != nil {
		return err
	}
	if st.Done {
		logger.Info(f.what+" ended", "written", st.Written)
	}
	return nil
}

// endBackfillsOfANewMount ends the key-id and tombstone backfills of a
// mount whose lifecycle log is empty: every key and client is created with
// its log entry, so such a mount has no record an older version wrote
// without its index entries, and the backfills would otherwise walk every
// key it receives before its first tick. Reading the log's head costs the
// same at any size, where listing the keys would read every one.
func (b *apikeysBackend) endBackfillsOfANewMount(ctx context.Context, s logical.Storage) error {
	head, err := b.log.Head(ctx, s)
	if err != nil || head.Seq != 0 {
		return err
	}
	return errors.Join(b.keyIDBackfill().end(ctx, s), b.tombstoneBackfill().end(ctx, s))
}
