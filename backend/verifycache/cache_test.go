package verifycache

import (
	"errors"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// countingLoader returns v and counts how often storage would be read.
func countingLoader[V any](v *V, n *int) func() (*V, error) {
	return func() (*V, error) {
		*n++
		return v, nil
	}
}

func TestHitsDoNotReload(t *testing.T) {
	c := New()
	var n int
	r := &record.Role{Name: "r"}
	for i := 0; i < 3; i++ {
		got, err := c.Role("r", countingLoader(r, &n))
		if err != nil || got != r {
			t.Fatalf("Role: %v %v", got, err)
		}
	}
	if n != 1 {
		t.Fatalf("loaded %d times, want 1", n)
	}
	c.DropRole("r")
	if _, _ = c.Role("r", countingLoader(r, &n)); n != 2 {
		t.Fatalf("after DropRole: loaded %d times, want 2", n)
	}
	c.Purge()
	if _, _ = c.Role("r", countingLoader(r, &n)); n != 3 {
		t.Fatalf("after Purge: loaded %d times, want 3", n)
	}
}

func TestAbsentAndErrorsAreNotCached(t *testing.T) {
	c := New()
	var n int
	for i := 0; i < 2; i++ {
		got, err := c.Client("svc", countingLoader[record.Client](nil, &n))
		if err != nil || got != nil {
			t.Fatalf("absent client: %v %v", got, err)
		}
	}
	if n != 2 {
		t.Fatalf("an absent client was cached (%d loads)", n)
	}
	boom := errors.New("storage down")
	if _, err := c.Index("h", func() (*record.IndexEntry, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Index error: %v", err)
	}
	ie, err := c.Index("h", func() (*record.IndexEntry, error) { return &record.IndexEntry{Client: "svc", Name: "k"}, nil })
	if err != nil || ie == nil || ie.Client != "svc" || ie.Name != "k" {
		t.Fatalf("Index after an error: %+v %v", ie, err)
	}
}

// Index hands out copies: a caller changing its entry cannot change the
// cache's.
func TestIndexReturnsCopies(t *testing.T) {
	c := New()
	load := func() (*record.IndexEntry, error) { return &record.IndexEntry{Client: "svc", Name: "k"}, nil }
	a, _ := c.Index("h", load)
	a.Name = "changed"
	b, _ := c.Index("h", load)
	if b.Name != "k" {
		t.Fatalf("cached entry changed through a returned copy: %+v", b)
	}
}

// A fill that read storage before a drop must not insert what it read:
// the drop's generation bump fences it, for every kind of record.
func TestDropFencesFillInFlight(t *testing.T) {
	cases := []struct {
		name string
		fill func(c *Cache, load func()) (cached func(c *Cache) bool)
		drop func(c *Cache)
	}{
		{"index", func(c *Cache, during func()) func(*Cache) bool {
			_, _ = c.Index("h", func() (*record.IndexEntry, error) { during(); return &record.IndexEntry{}, nil })
			return func(c *Cache) bool { _, ok := c.index.Peek("h"); return ok }
		}, func(c *Cache) { c.DropIndex("h") }},
		{"key", func(c *Cache, during func()) func(*Cache) bool {
			_, _ = c.Key("svc", "k", func() (*record.Key, error) { during(); return &record.Key{Client: "svc", Name: "k"}, nil })
			return func(c *Cache) bool { _, ok := c.keys.Peek(keyRef{"svc", "k"}); return ok }
		}, func(c *Cache) { c.DropKey("svc", "k") }},
		{"role", func(c *Cache, during func()) func(*Cache) bool {
			_, _ = c.Role("r", func() (*record.Role, error) { during(); return &record.Role{Name: "r"}, nil })
			return func(c *Cache) bool { _, ok := c.roles.Peek("r"); return ok }
		}, func(c *Cache) { c.DropRole("r") }},
		{"client", func(c *Cache, during func()) func(*Cache) bool {
			_, _ = c.Client("svc", func() (*record.Client, error) { during(); return &record.Client{Name: "svc"}, nil })
			return func(c *Cache) bool { _, ok := c.clients.Peek("svc"); return ok }
		}, func(c *Cache) { c.DropClient("svc") }},
		{"purge", func(c *Cache, during func()) func(*Cache) bool {
			_, _ = c.Role("r", func() (*record.Role, error) { during(); return &record.Role{Name: "r"}, nil })
			return func(c *Cache) bool { _, ok := c.roles.Peek("r"); return ok }
		}, func(c *Cache) { c.Purge() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			// The drop runs while the loader is between its storage read
			// and the insert, as a concurrent writer's would.
			cached := tc.fill(c, func() { tc.drop(c) })
			if cached(c) {
				t.Fatal("a fill racing a drop inserted what it read before the drop")
			}
			// Without a racing drop the same fill is cached.
			if cached = tc.fill(c, func() {}); !cached(c) {
				t.Fatal("a fill with no racing drop was not cached")
			}
		})
	}
}

// A drop of one entry leaves the others, and a fill of an unrelated entry
// on another stripe is not fenced by it.
func TestDropIsPerEntry(t *testing.T) {
	c := New()
	var n int
	a, b := &record.Role{Name: "a"}, &record.Role{Name: "b"}
	_, _ = c.Role("a", countingLoader(a, &n))
	_, _ = c.Role("b", countingLoader(b, &n))
	c.DropRole("a")
	if _, _ = c.Role("b", countingLoader(b, &n)); n != 2 {
		t.Fatalf("dropping role a dropped role b (%d loads)", n)
	}
	// A client and a role of the same name are different entries.
	cl := &record.Client{Name: "a"}
	_, _ = c.Client("a", countingLoader(cl, &n))
	c.DropRole("a")
	if _, _ = c.Client("a", countingLoader(cl, &n)); n != 3 {
		t.Fatalf("dropping role a dropped client a (%d loads)", n)
	}
}

func TestTablesAreBounded(t *testing.T) {
	c := New()
	r := &record.Role{}
	var n int
	for i := 0; i < maxRoles+10; i++ {
		_, _ = c.Role(string(rune('a'+i%26))+time.Duration(i).String(), countingLoader(r, &n))
	}
	if got := c.roles.Len(); got != maxRoles {
		t.Fatalf("roles table holds %d entries, bound %d", got, maxRoles)
	}
}

// The cached key is a verify view: what verify reads (purpose and metadata
// too, for a role's verify_response_fields), and no plaintext secret or
// issuer identity.
func TestKeyIsVerifyView(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	full := &record.Key{
		KeyID: "id", Client: "svc", Name: "k", Role: "r", Owner: "o", Scopes: []string{"read"},
		Environment: "prod", Purpose: "p", Metadata: map[string]string{"m": "v"}, Retrievable: true,
		IssuedBy: record.Actor{Type: "entity", EntityID: "someone"}, RequestID: "req", ApprovalID: "appr",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastRotatedAt: now, NextRotationAt: now.Add(time.Minute),
		Leased: true, Revoked: true, RevokedAt: now, RevokeReason: "why", LastUsedAt: now,
		Versions: []*record.KeyVersion{{
			Version: 2, State: record.StateActive, HMAC: "hmac", Secret: "ak_prod_plaintext",
			CreatedAt: now, ActivatedAt: now, GraceEndsAt: now, RetiredAt: now, RevokedAt: now,
			RevokedBy: &record.Actor{Type: "token"}, LastVerifiedAt: now,
		}},
	}
	v, err := New().Key("svc", "k", func() (*record.Key, error) { return full, nil })
	if err != nil || v == nil {
		t.Fatalf("Key: %v %v", v, err)
	}
	if v == full || v.Versions[0] == full.Versions[0] {
		t.Fatal("the cache holds the loaded record itself, not a view of it")
	}
	if v.Metadata["m"] != "v" || v.Purpose != "p" {
		t.Fatalf("view lost what verify_response_fields answers: %+v", v)
	}
	if v.IssuedBy != (record.Actor{}) || v.RequestID != "" ||
		v.ApprovalID != "" || v.RevokeReason != "" {
		t.Fatalf("view keeps fields verify does not read: %+v", v)
	}
	kv := v.Versions[0]
	if kv.Secret != "" || kv.RevokedBy != nil {
		t.Fatalf("view keeps a secret or revoker: %+v", kv)
	}
	if v.KeyID != "id" || v.Client != "svc" || v.Name != "k" || v.Role != "r" || v.Owner != "o" ||
		len(v.Scopes) != 1 || v.Environment != "prod" || !v.Retrievable || !v.Leased || !v.Revoked ||
		!v.CreatedAt.Equal(now) || !v.ExpiresAt.Equal(full.ExpiresAt) || !v.LastRotatedAt.Equal(now) ||
		!v.NextRotationAt.Equal(full.NextRotationAt) || !v.RevokedAt.Equal(now) || !v.LastUsedAt.Equal(now) {
		t.Fatalf("view lost a field verify reads: %+v", v)
	}
	if kv.Version != 2 || kv.State != record.StateActive || kv.HMAC != "hmac" || !kv.CreatedAt.Equal(now) ||
		!kv.ActivatedAt.Equal(now) || !kv.GraceEndsAt.Equal(now) || !kv.RetiredAt.Equal(now) ||
		!kv.RevokedAt.Equal(now) || !kv.LastVerifiedAt.Equal(now) {
		t.Fatalf("view lost a version field verify reads: %+v", kv)
	}
}

func TestStripeSeparatesKinds(t *testing.T) {
	if stripe(kindRole, "a", "") == stripe(kindClient, "a", "") &&
		stripe(kindRole, "b", "") == stripe(kindClient, "b", "") {
		t.Fatal("role and client stripes coincide")
	}
	if s := stripe(kindKey, "svc", "k"); s < 0 || s >= stripes {
		t.Fatalf("stripe %d out of range", s)
	}
}

// A hit allocates nothing: verify calls these on every request.
func TestHitsDoNotAllocate(t *testing.T) {
	c := New()
	r, cl, k := &record.Role{Name: "r"}, &record.Client{Name: "svc"}, &record.Key{Client: "svc", Name: "k"}
	loadRole := func() (*record.Role, error) { return r, nil }
	loadClient := func() (*record.Client, error) { return cl, nil }
	loadKey := func() (*record.Key, error) { return k, nil }
	_, _ = c.Role("r", loadRole)
	_, _ = c.Client("svc", loadClient)
	_, _ = c.Key("svc", "k", loadKey)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = c.Role("r", loadRole)
		_, _ = c.Client("svc", loadClient)
		_, _ = c.Key("svc", "k", loadKey)
	}); n != 0 {
		t.Fatalf("cache hits allocate %v times", n)
	}
}
