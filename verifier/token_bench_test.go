package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// BenchmarkTokenVerify is the library's per-request offline check (every
// check, the signature included) next to BenchmarkEd25519VerifyOnly, the
// bare signature check of the same token: the floor under any verifier.
// make bench-token reports their ratio against a real Vault's JWKS.
func BenchmarkTokenVerify(b *testing.B) {
	clk := clock.NewFake(time.Now())
	s := newJWKSServer(b, clk)
	tok, _ := s.current().Sign(claims(clk, time.Hour, "orders:read"))
	v, err := NewTokenVerifier(TokenConfig{JWKSURL: s.url(), Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, "orders:read"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, tok, "orders:read"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519VerifyOnly(b *testing.B) {
	clk := clock.NewFake(time.Now())
	s := newJWKSServer(b, clk)
	kp := s.current()
	tok, _ := kp.Sign(claims(clk, time.Hour, "orders:read"))
	dot := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	signed, pub := []byte(tok[:dot]), ed25519.PublicKey(kp.Public)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ed25519.Verify(pub, signed, sig) {
			b.Fatal("signature does not verify")
		}
	}
}
