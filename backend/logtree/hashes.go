package logtree

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	storageHashes = "log/tree/hashes/"
	// pageHashes is how many stored hashes one storage entry holds: 8 KiB,
	// far below Raft's entry limit, and a proof touches at most one page
	// per tree level.
	pageHashes = 256
)

func pageKey(page int64) string { return fmt.Sprintf("%s%012d", storageHashes, page) }

// hashStore reads stored hashes from their pages and buffers the pages a
// growth step writes. A page read once is kept for the life of the store,
// which is one request or one step.
type hashStore struct {
	ctx   context.Context
	s     logical.Storage
	pages map[int64][]byte
	dirty map[int64]bool
}

func newHashStore(ctx context.Context, s logical.Storage) *hashStore {
	return &hashStore{ctx: ctx, s: s, pages: map[int64][]byte{}, dirty: map[int64]bool{}}
}

func (h *hashStore) page(p int64) ([]byte, error) {
	if b, ok := h.pages[p]; ok {
		return b, nil
	}
	entry, err := h.s.Get(h.ctx, pageKey(p))
	if err != nil {
		return nil, fmt.Errorf("reading log tree hashes: %w", err)
	}
	var b []byte
	if entry != nil {
		b = entry.Value
	}
	h.pages[p] = b
	return b, nil
}

// ReadHashes implements tlog.HashReader.
func (h *hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		b, err := h.page(idx / pageHashes)
		if err != nil {
			return nil, err
		}
		off := (idx % pageHashes) * tlog.HashSize
		if int64(len(b)) < off+tlog.HashSize {
			return nil, fmt.Errorf("log tree hash %d is missing", idx)
		}
		copy(out[i][:], b[off:off+tlog.HashSize])
	}
	return out, nil
}

// append adds hashes at index count onward (count is the number the
// state records as stored).
func (h *hashStore) append(count int64, hashes []tlog.Hash) error {
	for i, hash := range hashes {
		idx := count + int64(i)
		p := idx / pageHashes
		b, err := h.page(p)
		if err != nil {
			return err
		}
		want := (idx % pageHashes) * tlog.HashSize
		if int64(len(b)) < want {
			return fmt.Errorf("log tree page %d holds %d bytes, expected %d", p, len(b), want)
		}
		// Hashes past count were left by a step interrupted before it
		// moved the state: they are overwritten.
		h.pages[p] = append(b[:want], hash[:]...)
		h.dirty[p] = true
	}
	return nil
}

// flush writes the pages append changed.
func (h *hashStore) flush() error {
	for p := range h.dirty {
		if err := h.s.Put(h.ctx, &logical.StorageEntry{Key: pageKey(p), Value: h.pages[p]}); err != nil {
			return fmt.Errorf("writing log tree hashes: %w", err)
		}
		delete(h.dirty, p)
	}
	return nil
}
