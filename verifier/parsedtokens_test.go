package verifier

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// A kept token is checked in full every time: its signature against the
// key the JWKS holds now, its exp against the clock; forged tokens are not
// kept; with ParsedTokens < 0 nothing is.
func TestParsedTokensKeepEveryCheck(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, func(c *TokenConfig) { c.ClockSkew = -1 })
	ctx := context.Background()
	tok := sign(t, s.current(), claims(clk, time.Minute, "orders:read"))
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, tok, "orders:read"); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.parsed.entries.Len(); n != 1 {
		t.Fatalf("kept tokens = %d, want 1", n)
	}
	// The scope and audience checks run on the kept token too.
	_, err := v.Verify(ctx, tok, "orders:write")
	wantErr(t, err, ErrForbidden, CodeForbiddenScope)

	// A token with another token's signature is parsed anew, refused and
	// not kept.
	parts := strings.Split(tok, ".")
	other := strings.Split(sign(t, s.current(), claims(clk, time.Hour, "orders:*")), ".")
	_, err = v.Verify(ctx, parts[0]+"."+other[1]+"."+parts[2])
	wantErr(t, err, ErrInvalid, CodeBadSignature)
	if n := v.parsed.entries.Len(); n != 1 {
		t.Fatalf("kept tokens after a forgery = %d, want 1", n)
	}

	// Past exp the kept token is expired, and dropped.
	clk.Advance(time.Minute + time.Second)
	_, err = v.Verify(ctx, tok)
	wantErr(t, err, ErrExpired, CodeExpired)

	none := newTokenVerifier(t, s, func(c *TokenConfig) { c.ParsedTokens = -1 })
	fresh := sign(t, s.current(), claims(clk, time.Minute, "orders:read"))
	for i := 0; i < 2; i++ {
		if _, err := none.Verify(ctx, fresh); err != nil {
			t.Fatal(err)
		}
	}
	if none.parsed != nil {
		t.Fatal("ParsedTokens < 0 must keep no tokens")
	}
}

// Callers verifying one kept token at once share its parsed form; the race
// detector watches that go-jose only reads it.
func TestParsedTokensConcurrentVerify(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, nil)
	tok := sign(t, s.current(), claims(clk, time.Hour, "orders:read"))
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				c, err := v.Verify(context.Background(), tok, "orders:read")
				if err == nil && c.Subject != "acme" {
					t.Errorf("subject = %q", c.Subject)
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
