package backend

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestKeyWalkPagesInOrder walks 3 clients' keys in steps of every budget
// from 1 to 8 and checks each key is visited exactly once, in order, and
// that a step never reads more records than its budget.
func TestKeyWalkPagesInOrder(t *testing.T) {
	ctx := context.Background()
	b := &apikeysBackend{}
	s := &logical.InmemStorage{}
	var want []string
	for _, c := range []string{"acme", "beta", "zed"} {
		if err := putJSON(ctx, s, clientStorageKey(c), "client", &record.Client{Name: c}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			n := fmt.Sprintf("k%d", i)
			if err := putJSON(ctx, s, keyStorageKey(c, n), "key", &record.Key{Client: c, Name: n}); err != nil {
				t.Fatal(err)
			}
			want = append(want, c+"/"+n)
		}
	}
	for budget := 1; budget <= 8; budget++ {
		var got []string
		w := keyWalk{Budget: budget}
		for steps := 0; ; steps++ {
			if steps > len(want) {
				t.Fatalf("budget %d: the walk does not end", budget)
			}
			read := 0
			next, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
				read++
				got = append(got, k.Client+"/"+k.Name)
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if read > budget {
				t.Fatalf("budget %d: a step read %d keys", budget, read)
			}
			if next == "" {
				break
			}
			w.After = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("budget %d: visited %v, want %v", budget, got, want)
		}
	}

	// One client only, resuming after a declined key.
	var got []string
	next, err := keyWalk{Client: "beta", Budget: 10}.step(ctx, b, s, func(k *record.Key) (bool, error) {
		got = append(got, k.Name)
		return len(got) < 2, nil
	})
	if err != nil || next != "beta/k1" || fmt.Sprint(got) != "[k0 k1]" {
		t.Fatalf("client walk: %v next %q err %v", got, next, err)
	}
	got = nil
	next, err = keyWalk{Client: "beta", After: next, Budget: 10}.step(ctx, b, s, func(k *record.Key) (bool, error) {
		got = append(got, k.Name)
		return true, nil
	})
	if err != nil || next != "" || fmt.Sprint(got) != "[k2]" {
		t.Fatalf("client walk resumed: %v next %q err %v", got, next, err)
	}
}

// listRecorder records every prefix listed and every key read.
type listRecorder struct {
	logical.Storage
	mu       sync.Mutex
	prefixes []string
	gets     []string
}

func (r *listRecorder) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	r.mu.Lock()
	r.gets = append(r.gets, key)
	r.mu.Unlock()
	return r.Storage.Get(ctx, key)
}

func (r *listRecorder) List(ctx context.Context, prefix string) ([]string, error) {
	r.mu.Lock()
	r.prefixes = append(r.prefixes, prefix)
	r.mu.Unlock()
	return r.Storage.List(ctx, prefix)
}

// TestNoPageListsEveryKey: on Raft (and most physical backends) listing
// "keys/" reads every key of the mount to find the client folders, so a
// page, a bulk-operation step or a governance sweep that listed it would
// cost as much as the mount holds. Each must find the clients from their
// records instead.
func TestNoPageListsEveryKey(t *testing.T) {
	e := newTestEnv(t)
	keys := e.opsEnv(3)
	rec := &listRecorder{Storage: e.storage}
	e.storage = rec

	var keyID string
	for _, k := range e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"limit": 2}).Data["keys"].([]map[string]interface{}) {
		keyID = k["key_id"].(string)
	}
	before := len(rec.prefixes)
	if got := e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"key_id": keyID}).Data["keys"].([]map[string]interface{}); len(got) != 1 {
		t.Fatalf("key_id %s: %v", keyID, got)
	}
	if listed := rec.prefixes[before:]; len(listed) != 0 {
		t.Fatalf("a key_id lookup listed %v", listed)
	}
	e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"role": "r", "state": "active"})
	e.ok(logical.ReadOperation, "inventory/export", map[string]interface{}{"format": "csv"})
	e.ok(logical.ListOperation, "keys/a/", nil)
	e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "role": "r", "reason": "drill", "dry_run": true})
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "disable", "client": "b", "reason": "drill"})
	e.runOperation(resp.Data["id"].(string))
	e.tick()
	if err := e.b.periodic(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if got := e.verifyCode(keys["b/k00"], nil); got != record.CodeDisabled {
		t.Fatalf("the operation did not reach b/k00: %q", got)
	}

	if len(rec.prefixes) == 0 {
		t.Fatal("nothing was listed: the recorder is not in the path")
	}
	for _, p := range rec.prefixes {
		if p == storageKeyPrefix {
			t.Fatalf("listed %q, which reads every key; listed: %v", p, rec.prefixes)
		}
	}
}
