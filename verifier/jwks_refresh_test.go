package verifier

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// A token signed by a key published after the last fetch makes the
// verifier fetch again and accept it; tokens naming unknown kids make it
// fetch at most once per MinRefreshInterval, however many there are.
func TestTokenUnknownKidRefetchesWithinTheRateCap(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, func(c *TokenConfig) { c.MinRefreshInterval = 30 * time.Second })
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, s.current(), claims(clk, time.Hour, "orders:read"))); err != nil {
		t.Fatal(err)
	}
	if n := v.Fetches(); n != 1 {
		t.Fatalf("fetches after the first verify = %d, want 1", n)
	}

	clk.Advance(31 * time.Second)
	s.rotate(time.Hour)
	if _, err := v.Verify(ctx, sign(t, s.current(), claims(clk, time.Hour, "orders:read"))); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if n := v.Fetches(); n != 2 {
		t.Fatalf("fetches after a new kid = %d, want 2", n)
	}

	// A flood of made-up kids right after: refused without a fetch.
	forger := newJWKSServer(t, clk) // keys the mount never published
	for i := 0; i < 50; i++ {
		forger.rotate(0)
		_, err := v.Verify(ctx, sign(t, forger.current(), claims(clk, time.Hour, "orders:read")))
		wantErr(t, err, ErrInvalid, CodeUnknownKey)
	}
	if n := v.Fetches(); n != 2 {
		t.Fatalf("fetches after 50 unknown kids within the rate cap = %d, want still 2", n)
	}
	// Past the cap one more fetch is allowed, and only one.
	clk.Advance(30 * time.Second)
	for i := 0; i < 10; i++ {
		forger.rotate(0)
		_, err := v.Verify(ctx, sign(t, forger.current(), claims(clk, time.Hour, "orders:read")))
		wantErr(t, err, ErrInvalid, CodeUnknownKey)
	}
	if n := v.Fetches(); n != 3 {
		t.Fatalf("fetches after the cap passed = %d, want 3", n)
	}
}

// Callers that need a fetch while one runs wait for it: one fetch for all.
func TestTokenConcurrentCallersShareOneFetch(t *testing.T) {
	s, gate, v, tok := gatedSetup(t)

	const callers = 16
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	// The fetch has reached the server; let it answer.
	waitUntil(t, "a fetch to reach the server", func() bool { return s.fetches.Load() > 0 })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("%d callers made %d fetches, want 1", callers, n)
	}
}

// A signing key withdrawn in Vault keeps verifying until the verifier's
// set is RefreshInterval old, and not a moment after: the revocation
// bound. Refresh applies it at once.
func TestTokenWithdrawnKeyRefusedAfterRefreshInterval(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, func(c *TokenConfig) { c.RefreshInterval = 5 * time.Minute })
	ctx := context.Background()
	old := s.current()
	tok := sign(t, old, claims(clk, time.Hour, "orders:read"))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	s.rotate(time.Hour)
	s.withdraw(old.KID)

	clk.Advance(5*time.Minute - time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("within RefreshInterval the cached set still holds the key: %v", err)
	}
	clk.Advance(time.Second)
	_, err := v.Verify(ctx, tok)
	wantErr(t, err, ErrInvalid, CodeUnknownKey)

	// Refresh: a second withdrawal applies without waiting.
	cur := s.current()
	tok2 := sign(t, cur, claims(clk, time.Hour, "orders:read"))
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	s.rotate(time.Hour)
	s.withdraw(cur.KID)
	clk.Advance(DefaultMinRefreshInterval)
	if err := v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, tok2)
	wantErr(t, err, ErrInvalid, CodeUnknownKey)
}

// While the JWKS cannot be fetched, the last set serves until
// RefreshInterval + StaleIfError, then Verify answers ErrUnavailable (not
// invalid: the token may be fine); with StaleIfError off, at once.
func TestTokenStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale time.Duration
		serve time.Duration // how long past RefreshInterval the old set still serves
	}{
		{"default", 0, DefaultStaleIfError},
		{"10m", 10 * time.Minute, 10 * time.Minute},
		{"none", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			s := newJWKSServer(t, clk)
			v := newTokenVerifier(t, s, func(c *TokenConfig) { c.RefreshInterval, c.StaleIfError = 5*time.Minute, tc.stale })
			ctx := context.Background()
			tok := sign(t, s.current(), claims(clk, 24*time.Hour, "orders:read"))
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			s.setStatus(http.StatusServiceUnavailable)
			if tc.serve > 0 {
				clk.Advance(5*time.Minute + tc.serve - time.Second)
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("within StaleIfError: %v", err)
				}
				clk.Advance(time.Second)
			} else {
				clk.Advance(5 * time.Minute)
			}
			_, err := v.Verify(ctx, tok)
			wantErr(t, err, ErrUnavailable, CodeJWKSUnavailable)
			if HTTPStatus(err) != http.StatusServiceUnavailable {
				t.Fatalf("HTTPStatus = %d", HTTPStatus(err))
			}
			// Vault answers again: the next fetch (past the rate cap) heals it.
			s.setStatus(0)
			clk.Advance(DefaultMinRefreshInterval)
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("after the JWKS is back: %v", err)
			}
		})
	}
}

// A caller whose context ends stops waiting; the fetch goes on for others.
func TestTokenCallerContextEndsTheWaitNotTheFetch(t *testing.T) {
	s, gate, v, tok := gatedSetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, tok)
	wantErr(t, err, ErrUnavailable, CodeJWKSUnavailable)
	close(gate)
	waitUntil(t, "the abandoned fetch to complete", func() bool { return len(v.KeyIDs()) > 0 })
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

// gatedSetup returns a JWKS server whose fetches wait for gate to close, a
// verifier of it and a token of its key.
func gatedSetup(t *testing.T) (*jwksServer, chan struct{}, *TokenVerifier, string) {
	t.Helper()
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	gate := make(chan struct{})
	s.gate = gate
	return s, gate, newTokenVerifier(t, s, nil), sign(t, s.current(), claims(clk, time.Hour, "orders:read"))
}

// waitUntil polls cond, which a fetch running in the background makes
// true, until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
