package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds what a JWKS fetch reads: the mount publishes a few
// keys (well under 2 KiB); anything near this is not its JWKS.
const maxJWKSBytes = 1 << 20

// keySnapshot is one fetched JWK Set, reduced to what verification uses:
// the Ed25519 public keys by kid, parsed once. It is never modified after
// it is published, so the hot path reads it without a lock.
type keySnapshot struct {
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
}

// fetchCall is one JWKS fetch in flight; callers that need a fresh set
// while it runs wait for it instead of starting their own.
type fetchCall struct {
	done chan struct{}
	snap *keySnapshot
	err  error
}

// keyCache holds the latest snapshot and decides when to fetch: at most
// one fetch runs at a time, and a new one starts only minInterval after the
// previous one started.
type keyCache struct {
	url          string
	client       *http.Client
	fetchTimeout time.Duration
	minInterval  time.Duration
	now          func() time.Time

	snap atomic.Pointer[keySnapshot]

	mu          sync.Mutex
	inflight    *fetchCall
	lastAttempt time.Time // zero: never fetched
	fetches     atomic.Int64
}

// errRateCapped means a fetch was wanted but one started less than
// minInterval ago; the caller goes on with the snapshot it has.
var errRateCapped = fmt.Errorf("jwks fetched less than the minimum refresh interval ago")

// refresh fetches the set unless the rate cap forbids it, or joins the
// fetch already running. It returns the snapshot current afterwards (nil
// if none was ever fetched) and the fetch's error or errRateCapped. The
// fetch itself runs under its own timeout: a caller that gives up (ctx)
// leaves it to finish for the others.
func (c *keyCache) refresh(ctx context.Context) (*keySnapshot, error) {
	c.mu.Lock()
	call := c.inflight
	if call == nil {
		now := c.now()
		if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval {
			c.mu.Unlock()
			return c.snap.Load(), errRateCapped
		}
		c.lastAttempt = now
		call = &fetchCall{done: make(chan struct{})}
		c.inflight = call
		go c.run(call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			return c.snap.Load(), call.err
		}
		return call.snap, nil
	case <-ctx.Done():
		return c.snap.Load(), ctx.Err()
	}
}

func (c *keyCache) run(call *fetchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), c.fetchTimeout)
	defer cancel()
	keys, err := c.fetch(ctx)
	c.mu.Lock()
	if err == nil {
		call.snap = &keySnapshot{keys: keys, fetchedAt: c.now()}
		c.snap.Store(call.snap)
	}
	call.err = err
	c.inflight = nil
	c.mu.Unlock()
	close(call.done)
}

// fetch GETs the JWK Set and keeps its usable keys.
func (c *keyCache) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	c.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", c.url, resp.StatusCode)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", c.url, maxJWKSBytes)
	}
	return ed25519Keys(body)
}

// ed25519Keys parses a JWK Set document and keeps only the keys a token of
// the mount can be verified with: Ed25519 public keys (kty OKP, crv
// Ed25519) with a kid, meant for signatures with EdDSA when they say. Any
// other key, even one the JWKS holds, is never used: an RSA or symmetric
// key there must not make an RS256 or HS256 token verify. Keys are parsed
// one by one, so one that go-jose cannot read does not hide the others. A
// kid that names two keys names neither.
func ed25519Keys(doc []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON Web Key Set: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	dup := map[string]bool{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok || k.KeyID == "" || len(pub) != ed25519.PublicKeySize ||
			(k.Algorithm != "" && k.Algorithm != string(jose.EdDSA)) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if _, seen := keys[k.KeyID]; seen {
			dup[k.KeyID] = true
		}
		keys[k.KeyID] = pub
	}
	for kid := range dup {
		delete(keys, kid)
	}
	return keys, nil
}
