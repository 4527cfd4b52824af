package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// raftMaxEntrySize is Vault's default Raft max_entry_size: a larger Put
// fails, as it would on an integrated-storage cluster.
const raftMaxEntrySize = 1 << 20

// recordingStorage wraps a storage to observe what governance does: reads
// per storage prefix, the largest value written per prefix, and every key
// read. Puts above raftMaxEntrySize fail like Raft's.
type recordingStorage struct {
	logical.Storage

	mu      sync.Mutex
	gets    map[string]int // by first path segment ("keys/", "governance/", ...)
	puts    map[string]int // by first path segment
	lists   map[string]int // by first path segment
	largest map[string]int // largest Put value by first path segment
	keyGets []string       // keys/... paths read, in order
}

func newRecordingStorage(s logical.Storage) *recordingStorage {
	return &recordingStorage{Storage: s, gets: map[string]int{}, puts: map[string]int{}, lists: map[string]int{}, largest: map[string]int{}}
}

func segment(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

func (r *recordingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	r.mu.Lock()
	r.gets[segment(key)]++
	if strings.HasPrefix(key, storageKeyPrefix) {
		r.keyGets = append(r.keyGets, key)
	}
	r.mu.Unlock()
	return r.Storage.Get(ctx, key)
}

func (r *recordingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	r.mu.Lock()
	r.lists[segment(prefix)]++
	r.mu.Unlock()
	return r.Storage.List(ctx, prefix)
}

func (r *recordingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if len(e.Value) > raftMaxEntrySize {
		return fmt.Errorf("put %s: %d bytes exceeds the max entry size %d", e.Key, len(e.Value), raftMaxEntrySize)
	}
	r.mu.Lock()
	seg := segment(e.Key)
	r.puts[seg]++
	if len(e.Value) > r.largest[seg] {
		r.largest[seg] = len(e.Value)
	}
	r.mu.Unlock()
	return r.Storage.Put(ctx, e)
}

// reset forgets the reads and writes counted so far (not the largest
// writes).
func (r *recordingStorage) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets = map[string]int{}
	r.puts = map[string]int{}
	r.lists = map[string]int{}
	r.keyGets = nil
}

// reads returns the reads counted under a first path segment.
func (r *recordingStorage) reads(seg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[seg]
}

// listed returns the Lists counted under a first path segment.
func (r *recordingStorage) listed(seg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lists[seg]
}

// writes returns the Puts counted under a first path segment.
func (r *recordingStorage) writes(seg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.puts[seg]
}

// keysRead returns the keys/... paths read since the last reset.
func (r *recordingStorage) keysRead() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keyGets...)
}

func (r *recordingStorage) largestWrite(seg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.largest[seg]
}
