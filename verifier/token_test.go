package verifier

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
)

const (
	testIssuer   = "vault-plugin-secrets-apikeys/apikeys"
	testAudience = "orders-api"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// jwksServer serves the JWK Set of a jwtsign key set, the code the mount
// publishes its jwks with, and counts the fetches. Tests change the set
// (rotate, withdraw) or make it fail between fetches.
type jwksServer struct {
	t       testing.TB
	clk     *clock.Fake
	mu      sync.Mutex
	set     *jwtsign.KeySet
	status  int           // non-zero: answer this instead of the set
	raw     []byte        // non-nil: serve this body instead of the set
	gate    chan struct{} // non-nil: each fetch waits for it to close
	fetches atomic.Int64
	srv     *httptest.Server
}

func newJWKSServer(t testing.TB, clk *clock.Fake) *jwksServer {
	t.Helper()
	s := &jwksServer{t: t, clk: clk, set: &jwtsign.KeySet{}}
	if err := s.set.Rotate(rand.Reader, clk.Now(), time.Hour, true); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, _ *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	gate, status, raw := s.gate, s.status, s.raw
	body, err := json.Marshal(s.set.JWKS(s.clk.Now()))
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	switch {
	case err != nil:
		s.t.Error(err)
	case status != 0:
		w.WriteHeader(status)
	case raw != nil:
		w.Write(raw)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

func (s *jwksServer) url() string { return s.srv.URL + "/v1/apikeys/jwks" }

// current returns the key pair that signs now.
func (s *jwksServer) current() *jwtsign.KeyPair {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Current
}

// rotate makes a fresh key current; the old one stays published for keep.
func (s *jwksServer) rotate(keep time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.set.Rotate(rand.Reader, s.clk.Now(), keep, true); err != nil {
		s.t.Fatal(err)
	}
}

func (s *jwksServer) withdraw(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.set.Withdraw(s.clk.Now(), []string{kid}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

// claims are what the mount's token exchange signs, at the fake time.
func claims(clk *clock.Fake, ttl time.Duration, scope string) jwtsign.Claims {
	now := clk.Now()
	return jwtsign.Claims{
		Claims: jwt.Claims{
			Issuer:    testIssuer,
			Subject:   "acme",
			Audience:  jwt.Audience{testAudience},
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jti-1",
		},
		Scope: scope,
	}
}

func sign(t *testing.T, kp *jwtsign.KeyPair, c jwtsign.Claims) string {
	t.Helper()
	tok, err := kp.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newTokenVerifier(t *testing.T, s *jwksServer, mod func(*TokenConfig)) *TokenVerifier {
	t.Helper()
	cfg := TokenConfig{JWKSURL: s.url(), Issuer: testIssuer, Audience: testAudience, Now: s.clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewTokenVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantErr asserts err is an *Error of kind with code.
func wantErr(t *testing.T, err error, kind error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error of kind %v", err, kind)
	}
	if !errors.Is(err, kind) || e.Code != code {
		t.Fatalf("err = %v (kind %v, code %q), want kind %v code %q", err, e.Kind, e.Code, kind, code)
	}
}

func TestTokenVerifyAcceptsAMountToken(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, nil)
	tok := sign(t, s.current(), claims(clk, 15*time.Minute, "orders:read orders:write"))
	c, err := v.Verify(context.Background(), tok, "orders:read")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "acme" || c.Issuer != testIssuer || c.KeyID != s.current().KID || c.ID != "jti-1" ||
		!c.Expiry.Equal(start.Add(15*time.Minute)) || !c.NotBefore.Equal(start) || !c.IssuedAt.Equal(start) {
		t.Fatalf("claims = %+v", c)
	}
	if !c.HasScope("orders:write") || c.HasScope("orders:delete") {
		t.Fatalf("scopes = %v", c.Scopes)
	}
	if got := v.KeyIDs(); len(got) != 1 || got[0] != s.current().KID {
		t.Fatalf("KeyIDs = %v", got)
	}
}

func TestTokenIssuerAudienceScopeExpiry(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	v := newTokenVerifier(t, s, nil)
	ctx := context.Background()
	kp := s.current()
	base := claims(clk, 15*time.Minute, "orders:* billing:read")

	if _, err := v.Verify(ctx, sign(t, kp, base), "orders:write", "billing:read"); err != nil {
		t.Fatalf("a wildcard grant must cover the scope below it: %v", err)
	}
	_, err := v.Verify(ctx, sign(t, kp, base), "billing:write")
	wantErr(t, err, ErrForbidden, CodeForbiddenScope)

	other := base
	other.Issuer = "vault-plugin-secrets-apikeys/other-mount"
	_, err = v.Verify(ctx, sign(t, kp, other))
	wantErr(t, err, ErrInvalid, CodeWrongIssuer)

	other = base
	other.Audience = jwt.Audience{"billing-api"}
	_, err = v.Verify(ctx, sign(t, kp, other))
	wantErr(t, err, ErrForbidden, CodeForbiddenAudience)

	other = base
	other.Expiry = nil
	_, err = v.Verify(ctx, sign(t, kp, other))
	wantErr(t, err, ErrInvalid, CodeMissingExpiry)

	_, err = v.Verify(ctx, "")
	wantErr(t, err, ErrInvalid, CodeMissing)
	_, err = v.Verify(ctx, "not.a.jwt")
	wantErr(t, err, ErrInvalid, CodeMalformed)
	_, err = v.Verify(ctx, strings.Repeat("a", MaxTokenBytes+1))
	wantErr(t, err, ErrInvalid, CodeMalformed)

	// A token whose signature belongs to other claims.
	good := strings.Split(sign(t, kp, base), ".")
	forged := strings.Split(sign(t, kp, other), ".")
	_, err = v.Verify(ctx, good[0]+"."+forged[1]+"."+good[2])
	wantErr(t, err, ErrInvalid, CodeBadSignature)
}

// The clock skew is bounded and configurable: times within it pass, times
// beyond it do not, in both directions.
func TestTokenClockSkew(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	ctx := context.Background()
	tok := sign(t, s.current(), claims(clk, time.Minute, "orders:read")) // nbf = iat = start, exp = start+1m

	for _, tc := range []struct {
		name string
		skew time.Duration
		at   time.Duration // from start
		kind error
		code string
	}{
		{"default skew, before nbf within it", 0, -29 * time.Second, nil, ""},
		{"default skew, before nbf beyond it", 0, -31 * time.Second, ErrInvalid, CodeNotYetValid},
		{"default skew, after exp within it", 0, time.Minute + 29*time.Second, nil, ""},
		{"default skew, after exp beyond it", 0, time.Minute + 31*time.Second, ErrExpired, CodeExpired},
		{"no skew, one second before nbf", -1, -time.Second, ErrInvalid, CodeNotYetValid},
		{"no skew, one second after exp", -1, time.Minute + time.Second, ErrExpired, CodeExpired},
		{"2m skew, 2m before nbf", 2 * time.Minute, -2 * time.Minute, nil, ""},
		{"2m skew, after exp beyond it", 2 * time.Minute, 3*time.Minute + time.Second, ErrExpired, CodeExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vclk := clock.NewFake(start.Add(tc.at))
			v := newTokenVerifier(t, s, func(c *TokenConfig) { c.ClockSkew, c.Now = tc.skew, vclk.Now })
			_, err := v.Verify(ctx, tok)
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.kind, tc.code)
		})
	}
}

func TestTokenConfigBounds(t *testing.T) {
	ok := TokenConfig{JWKSURL: "http://127.0.0.1:1/v1/apikeys/jwks", Issuer: testIssuer, Audience: testAudience}
	for _, tc := range []struct {
		name string
		mod  func(*TokenConfig)
		want string
	}{
		{"no url", func(c *TokenConfig) { c.JWKSURL = "" }, "JWKSURL"},
		{"no issuer", func(c *TokenConfig) { c.Issuer = "" }, "Issuer"},
		{"no audience", func(c *TokenConfig) { c.Audience = "" }, "Audience"},
		{"skew over the bound", func(c *TokenConfig) { c.ClockSkew = MaxClockSkew + time.Second }, "ClockSkew"},
		{"refresh over the bound", func(c *TokenConfig) { c.RefreshInterval = 2 * time.Hour }, "RefreshInterval"},
		{"rate cap under a second", func(c *TokenConfig) { c.MinRefreshInterval = time.Millisecond }, "MinRefreshInterval"},
		{"rate cap over the refresh", func(c *TokenConfig) { c.RefreshInterval, c.MinRefreshInterval = time.Minute, 2*time.Minute }, "MinRefreshInterval"},
		{"stale over the bound", func(c *TokenConfig) { c.StaleIfError = 25 * time.Hour }, "StaleIfError"},
	} {
		cfg := ok
		tc.mod(&cfg)
		if _, err := NewTokenVerifier(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := NewTokenVerifier(ok); err != nil {
		t.Fatal(err)
	}
}

// Only EdDSA: a token with alg none, HS256 or RS256 is refused while
// parsing, even when the JWKS holds a key of that kind under its kid (an
// attacker who can add a key there, or who signs HS256 with a public key
// as the secret, gets nothing); an EdDSA token naming a non-Ed25519 key of
// the JWKS is refused too.
func TestTokenEdDSAOnly(t *testing.T) {
	clk := clock.NewFake(start)
	s := newJWKSServer(t, clk)
	ed := s.current()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hmacSecret := []byte(ed.Public) // the classic confusion: the public key as an HMAC secret
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		ed.JWK(),
		{Key: rsaKey.Public(), KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"},
		{Key: hmacSecret, KeyID: "oct-1", Algorithm: string(jose.HS256), Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.raw = doc
	v := newTokenVerifier(t, s, nil)
	ctx := context.Background()
	c := claims(clk, time.Minute, "orders:read")

	signWith := func(alg jose.SignatureAlgorithm, key interface{}, kid string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := v.Verify(ctx, sign(t, ed, c)); err != nil {
		t.Fatalf("the EdDSA token: %v", err)
	}
	for name, tok := range map[string]string{
		"RS256 with the JWKS's RSA key":          signWith(jose.RS256, rsaKey, "rsa-1"),
		"HS256 with the JWKS's oct key":          signWith(jose.HS256, hmacSecret, "oct-1"),
		"HS256 keyed with the Ed25519 key's kid": signWith(jose.HS256, hmacSecret, ed.KID),
		"alg none": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+ed.KID+`"}`)) + "." +
			strings.Split(sign(t, ed, c), ".")[1] + ".",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(ctx, tok)
			wantErr(t, err, ErrInvalid, CodeMalformed)
		})
	}
	// An EdDSA header naming the RSA key: not an Ed25519 key, so unknown.
	_, err = v.Verify(ctx, signWith(jose.EdDSA, ed25519Private(t, ed), "rsa-1"))
	wantErr(t, err, ErrInvalid, CodeUnknownKey)
}

func ed25519Private(t *testing.T, kp *jwtsign.KeyPair) ed25519.PrivateKey {
	t.Helper()
	if len(kp.Seed) != ed25519.SeedSize {
		t.Fatal("key pair has no private half")
	}
	return ed25519.NewKeyFromSeed(kp.Seed)
}

func TestJWKSKeepsOnlyUsableEd25519Keys(t *testing.T) {
	clk := clock.NewFake(start)
	a, _ := jwtsign.NewKeyPair(rand.Reader, clk.Now())
	b, _ := jwtsign.NewKeyPair(rand.Reader, clk.Now())
	c, _ := jwtsign.NewKeyPair(rand.Reader, clk.Now())
	wrongAlg := a.JWK()
	wrongAlg.KeyID, wrongAlg.Algorithm = "wrong-alg", string(jose.RS256)
	forEnc := a.JWK()
	forEnc.KeyID, forEnc.Use = "for-enc", "enc"
	dupB, dupC := b.JWK(), c.JWK()
	dupB.KeyID, dupC.KeyID = "dup", "dup"
	var keys []json.RawMessage
	for _, k := range []jose.JSONWebKey{a.JWK(), wrongAlg, forEnc, dupB, dupC} {
		raw, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, raw)
	}
	keys = append(keys, json.RawMessage(`{"kty":"XYZ","kid":"unknown-kty"}`), json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"no-x"}`))
	doc, _ := json.Marshal(map[string]interface{}{"keys": keys})
	got, err := ed25519Keys(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[a.KID] == nil {
		t.Fatalf("kept %v, want only %s", got, a.KID)
	}
	if _, err := ed25519Keys([]byte(`<html>`)); err == nil {
		t.Fatal("a document that is not a JWK Set must be an error")
	}
}
