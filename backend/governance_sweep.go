package backend

import (
	"context"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// The background key sweep (idle revocation, review and overdue flags) is
// incremental: each governance tick visits at most sweepBatch keys in
// storage order (client, then key name), carrying on after the last key the
// previous tick visited, and starts a new pass after the last key of the
// mount. A tick's cost is therefore bounded whatever the number of keys,
// and a pass over n keys takes ceil(n/sweepBatch) ticks: a key that exists
// when a pass starts is visited in it; one created during a pass, in that
// pass or the next.

// sweepBatch is the most keys one tick visits. It keeps the visiting rate
// of the former whole-mount sweep, which was paced to 10k keys a minute on
// average: a mount below it is still swept whole every tick, one of 100k
// keys every 10 ticks, so alert latency is unchanged, but no single tick
// reads more than this many keys (and as many mark entries).
const sweepBatch = 10000

// sweepCursor is the last key a sweep visited; zero before the first key of
// a pass.
type sweepCursor struct {
	Client string `json:"client"`
	Key    string `json:"key"`
}

func (c sweepCursor) atStart() bool { return c.Client == "" }

// keyWalker yields the mount's keys in order from cached listings: clients
// are listed once per pass, and a client's key names once per pass when the
// walk reaches it, so a tick in the middle of a big client lists nothing.
// Keys created after a listing are visited in the next pass; keys gone since
// are skipped by the reader. It is node-local memory, guarded by
// govRuntime.persistMu, and is rebuilt from the persisted cursor whenever it
// is not positioned there (a restart, another node swept meanwhile, or a
// tick failed before saving).
type keyWalker struct {
	valid   bool
	at      sweepCursor // the key last returned by next
	clients []string
	ci      int // the client being walked, index in clients
	names   []string
	namesOf int // the client whose names are loaded; -1: none
	ni      int // the next name, index in names
}

// seek positions the walker just after c.
func (w *keyWalker) seek(ctx context.Context, s logical.Storage, c sweepCursor) error {
	if w.valid && w.at == c {
		return nil
	}
	*w = keyWalker{at: c, namesOf: -1}
	clients, err := s.List(ctx, storageKeyPrefix)
	if err != nil {
		return err
	}
	for i := range clients {
		clients[i] = strings.TrimSuffix(clients[i], "/")
	}
	// Storage lists in order today; the cursor's binary search must not
	// depend on it.
	sort.Strings(clients)
	w.clients = clients
	if !c.atStart() {
		w.ci = sort.SearchStrings(clients, c.Client)
		// If the cursor's client is gone, ci is the client after it.
		if w.ci < len(clients) && clients[w.ci] == c.Client {
			if err := w.loadNames(ctx, s); err != nil {
				return err
			}
			w.ni = sort.SearchStrings(w.names, c.Key)
			if w.ni < len(w.names) && w.names[w.ni] == c.Key {
				w.ni++
			}
		}
	}
	w.valid = true
	return nil
}

func (w *keyWalker) loadNames(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, storageKeyPrefix+w.clients[w.ci]+"/")
	if err != nil {
		w.valid = false
		return err
	}
	sort.Strings(names)
	w.names, w.namesOf, w.ni = names, w.ci, 0
	return nil
}

// next returns the next key's client and name, or ok false at the end of
// the pass; the walker then lists afresh for the next pass.
func (w *keyWalker) next(ctx context.Context, s logical.Storage) (client, name string, ok bool, err error) {
	for w.ci < len(w.clients) {
		if w.namesOf != w.ci {
			if err := w.loadNames(ctx, s); err != nil {
				return "", "", false, err
			}
		}
		if w.ni < len(w.names) {
			client, name = w.clients[w.ci], w.names[w.ni]
			w.ni++
			w.at = sweepCursor{Client: client, Key: name}
			return client, name, true, nil
		}
		w.ci++
	}
	*w = keyWalker{}
	return "", "", false, nil
}
