package shortlived

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// indexedKeyIDs reads every raw index entry of mount m and returns the key
// ids they point at.
func indexedKeyIDs(t *testing.T, m string) []string {
	t.Helper()
	var ids []string
	for _, h := range vaulttest.RawList(t, m, "index/") {
		raw, err := client(t).Logical().Read(vaulttest.RawPath(t, m, "index/"+h))
		if err != nil || raw == nil {
			t.Fatalf("raw read of index/%s: %v", h, err)
		}
		v := raw.Data["value"].(string)
		i := strings.Index(v, `"key_id":"`)
		if i < 0 {
			t.Fatalf("index entry without key_id: %s", v)
		}
		rest := v[i+len(`"key_id":"`):]
		ids = append(ids, rest[:strings.IndexByte(rest, '"')])
	}
	return ids
}

// TestDeadLeasedKeysArePurgedByTidy: a leased key whose lease was revoked
// is purged once leased_key_retention has passed: the key record and its
// index entry leave Vault's storage, the inventory and the revocation list,
// while the lifecycle log keeps its history and stays valid. Live leased
// keys and keys that are not leased are untouched.
func TestDeadLeasedKeysArePurgedByTidy(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "1h"})
	if got := num(t, read(t, m+"/config").Data["leased_key_retention"]); got != 7*86400 {
		t.Fatalf("default leased_key_retention = %d", got)
	}
	_, err := client(t).Logical().Write(m+"/config", map[string]interface{}{"leased_key_retention": "-5s"})
	expectStatus(t, err, 400, "leased_key_retention")
	write(t, m+"/config", map[string]interface{}{"leased_key_retention": "1s"})

	dead := read(t, m+"/creds/acme/partner")
	alive := read(t, m+"/creds/acme/partner")
	deadName, deadID, deadKey := dead.Data["name"].(string), dead.Data["key_id"].(string), dead.Data["key"].(string)
	aliveName, aliveKey := alive.Data["name"].(string), alive.Data["key"].(string)
	write(t, m+"/keys/acme/main", map[string]interface{}{"role": "partner"})
	write(t, m+"/keys/acme/main/revoke", map[string]interface{}{"reason": "test"})

	if err := client(t).Sys().Revoke(dead.LeaseID); err != nil {
		t.Fatal(err)
	}
	if names := vaulttest.RawList(t, m, "keys/acme/"); !slices.Contains(names, deadName) || len(names) != 3 {
		t.Fatalf("raw keys before the purge: %v", names)
	}
	if ids := indexedKeyIDs(t, m); !slices.Contains(ids, deadID) || len(ids) != 3 {
		t.Fatalf("raw index before the purge: %v", ids)
	}

	// The key died just now; once a second has passed, tidy purges it.
	// (Vault's periodic function may get there first: either way the key
	// must go exactly once.)
	purged := 0
	waitFor(t, "tidy to purge the dead leased key", 30*time.Second, func() bool {
		s := write(t, m+"/tidy", nil)
		purged += int(num(t, s.Data["purged"]))
		if num(t, s.Data["leased_key_retention"]) != 1 {
			t.Fatalf("tidy answer: %v", s.Data)
		}
		return !slices.Contains(vaulttest.RawList(t, m, "keys/acme/"), deadName)
	})
	if s := write(t, m+"/tidy", nil); num(t, s.Data["purged"]) != 0 || num(t, s.Data["remaining_due"]) != 0 {
		t.Fatalf("tidy after the purge: %v", s.Data)
	}

	// Raw storage holds nothing of the purged key, and all of the others.
	names := vaulttest.RawList(t, m, "keys/acme/")
	if slices.Contains(names, deadName) || !slices.Contains(names, aliveName) || !slices.Contains(names, "main") || len(names) != 2 {
		t.Fatalf("raw keys after the purge: %v", names)
	}
	if ids := indexedKeyIDs(t, m); slices.Contains(ids, deadID) || len(ids) != 2 {
		t.Fatalf("raw index after the purge: %v", ids)
	}
	inv := read(t, m+"/inventory")
	for _, it := range inv.Data["keys"].([]interface{}) {
		if it.(map[string]interface{})["key_id"] == deadID {
			t.Fatalf("purged key still in the inventory: %v", it)
		}
	}
	if n := num(t, inv.Data["count"]); n != 2 {
		t.Fatalf("inventory count after the purge: %d", n)
	}
	rl := read(t, m+"/clients/acme/revocations")
	ids, _ := rl.Data["revoked_key_ids"].([]interface{})
	if len(ids) != 1 || slices.Contains(ids, interface{}(deadID)) || num(t, rl.Data["leased_key_retention"]) != 1 {
		t.Fatalf("revocation list after the purge: %v", rl.Data)
	}

	// Verify: the purged key is unknown, the live one still works.
	if active, code := verify(t, m, deadKey); active || code != "not_found" {
		t.Fatalf("purged key: active=%v code=%q", active, code)
	}
	if active, code := verify(t, m, aliveKey); !active {
		t.Fatalf("live leased key after the purge: %q", code)
	}

	// The log keeps the whole history and names the purge.
	evs := logEvents(t, m, "keys.purged")
	if len(evs) != 1 || details(evs[0])["key_ids"] != deadID || details(evs[0])["count"] != "1" {
		t.Fatalf("purge events: %v", evs)
	}
	if trig := details(evs[0])["trigger"]; (trig == "tidy") != (purged == 1) {
		t.Fatalf("purge event trigger %v, tidy purged %d", trig, purged)
	}
	if evs := logEvents(t, m, "key.revoked"); len(evs) != 2 {
		t.Fatalf("revocation events after the purge: %v", evs)
	}
	if v := read(t, m+"/log/verify"); v.Data["valid"] != true {
		t.Fatalf("log/verify after the purge: %v", v.Data)
	}
	if p := read(t, m+"/policy").Data["leased_keys"].(map[string]interface{}); num(t, p["leased_key_retention"]) != 1 {
		t.Fatalf("policy leased_keys: %v", p)
	}

	// The lease of the surviving key still works end to end.
	if err := client(t).Sys().Revoke(alive.LeaseID); err != nil {
		t.Fatal(err)
	}
	if active, code := verify(t, m, aliveKey); active || code != "revoked" {
		t.Fatalf("after revoking the other lease: active=%v code=%q", active, code)
	}
}
