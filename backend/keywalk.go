package backend

import (
	"context"
	"sort"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// keyWalk visits key records in (client, name) order in bounded steps, so
// a page of the inventory or a step of a bulk operation reads at most a
// budget of records however many keys the mount holds. Its position is a
// cursor, "<client>/<name>" of the last key visited: names never contain
// "/" (record.ValidateName), so the form is unambiguous and a caller can
// hand it back as it came.
type keyWalk struct {
	// After is the cursor to continue from ("" from the first key).
	After string
	// Client, when set, restricts the walk to that client's keys.
	Client string
	// Budget is the most key records one step reads (at least 1).
	Budget int
}

// step calls fn for each key after w.After in order, until fn returns
// false, the budget is spent or every key was visited. It returns the
// cursor to continue from: the last key visited, or "" when the walk
// reached the end. A key fn declined (returned false for) counts as
// visited, so fn decides before returning false whether it used the key.
func (w keyWalk) step(ctx context.Context, b *apikeysBackend, s logical.Storage, fn func(*record.Key) (bool, error)) (string, error) {
	afterClient, afterName, _ := strings.Cut(w.After, "/")
	clients := []string{w.Client}
	if w.Client == "" {
		listed, err := listKeyClients(ctx, s)
		if err != nil {
			return "", err
		}
		clients = trimSorted(listed)
	}
	budget := max(w.Budget, 1)
	start := sort.SearchStrings(clients, afterClient)
	for _, c := range clients[start:] {
		names, err := b.listClientKeys(ctx, s, c)
		if err != nil {
			return "", err
		}
		names = trimSorted(names)
		from := 0
		if c == afterClient {
			from = sort.Search(len(names), func(i int) bool { return names[i] > afterName })
		}
		for _, n := range names[from:] {
			k, err := b.getKey(ctx, s, c, n)
			if err != nil {
				return "", err
			}
			budget--
			if k != nil {
				more, err := fn(k)
				if err != nil {
					return "", err
				}
				if !more {
					return c + "/" + n, nil
				}
			}
			if budget == 0 {
				return c + "/" + n, nil
			}
		}
	}
	return "", nil
}

// listKeyClients names every client that may hold keys. It lists the
// client records, not "keys/": on Raft and most physical backends listing a
// prefix reads every entry beneath it, so "keys/" costs one read per key of
// the mount while "clients/" costs one per client. Issuance requires the
// client record and client records are never deleted, so no key's client is
// missing from the list.
func listKeyClients(ctx context.Context, s logical.Storage) ([]string, error) {
	return s.List(ctx, storageClientPrefix)
}

// trimSorted drops the trailing "/" storage listings give folders and
// sorts, since the order of a listing is the storage backend's choice.
func trimSorted(names []string) []string {
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, "/")
	}
	sort.Strings(names)
	return names
}
