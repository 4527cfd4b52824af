package backend

import (
	"context"
	"fmt"
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
