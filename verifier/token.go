package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// Defaults and bounds of TokenConfig.
const (
	DefaultClockSkew          = 30 * time.Second
	MaxClockSkew              = 5 * time.Minute
	DefaultRefreshInterval    = 5 * time.Minute
	MaxRefreshInterval        = time.Hour
	DefaultMinRefreshInterval = 30 * time.Second
	LeastMinRefreshInterval   = time.Second
	DefaultStaleIfError       = 15 * time.Minute
	MaxStaleIfError           = 24 * time.Hour
	DefaultFetchTimeout       = 10 * time.Second
	// MaxTokenBytes bounds the tokens Verify parses: the mount's are
	// under 1 KiB; a longer one is refused before any decoding.
	MaxTokenBytes = 8 << 10
)

// edDSAOnly is the one algorithm a token may name: the mount signs with
// Ed25519 only, and go-jose refuses any other alg (none, HS*, RS*, ...)
// while parsing, before a key is looked at.
var edDSAOnly = []jose.SignatureAlgorithm{jose.EdDSA}

// TokenConfig configures a TokenVerifier. JWKSURL, Issuer and Audience are
// required; every duration has a default (0) and a bound.
type TokenConfig struct {
	// JWKSURL is the mount's JWK Set: <vault address>/v1/<mount>/jwks.
	// Use https outside a loopback test setup.
	JWKSURL string
	// Issuer is the iss every token must carry: the mount's config
	// token_issuer, or "vault-plugin-secrets-apikeys/<mount>" when unset.
	Issuer string
	// Audience is this resource server: every token's aud must name it.
	Audience string
	// ClockSkew is how far this machine's clock may differ from Vault's:
	// a token is accepted up to ClockSkew past exp and ClockSkew before
	// nbf/iat. 0 means DefaultClockSkew; a negative value means none; at
	// most MaxClockSkew.
	ClockSkew time.Duration
	// RefreshInterval is the longest a fetched JWKS is used before it is
	// fetched again (by the first Verify after it, shared by every caller):
	// a signing key withdrawn in Vault stops verifying here at most this
	// long after the withdrawal. 0 means DefaultRefreshInterval; at most
	// MaxRefreshInterval.
	RefreshInterval time.Duration
	// MinRefreshInterval is the rate cap: at most one fetch starts per this
	// interval, whatever unknown kids tokens name or how often fetches
	// fail. 0 means DefaultMinRefreshInterval; at least
	// LeastMinRefreshInterval, at most RefreshInterval.
	MinRefreshInterval time.Duration
	// StaleIfError is how long past RefreshInterval the last fetched JWKS
	// may still be used while fetching it again fails, before Verify
	// answers ErrUnavailable: the revocation bound while Vault cannot be
	// reached is RefreshInterval + StaleIfError. 0 means
	// DefaultStaleIfError; a negative value means none (fail closed at
	// RefreshInterval); at most MaxStaleIfError.
	StaleIfError time.Duration
	// FetchTimeout bounds one JWKS fetch. 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// ParsedTokens is how many tokens whose signature verified are kept
	// parsed (keyed by their SHA-256, each until its exp), so the next
	// request with the same token skips parsing and decoding; the
	// signature and claims are still checked on every call. 0 means
	// DefaultParsedTokens; a negative value keeps none.
	ParsedTokens int
	// HTTPClient fetches the JWKS; nil means a client with NewTransport.
	HTTPClient *http.Client
	// Now tells the time (tests inject a fake clock); nil means time.Now.
	Now func() time.Time
}

// TokenVerifier verifies exchanged tokens offline against the mount's
// JWKS. It is safe for concurrent use; make one per (JWKS, audience) and
// share it.
type TokenVerifier struct {
	cfg      TokenConfig
	expected jwt.Expected // issuer and audience, made once
	cache    *keyCache
	parsed   *parsedTokens // nil when TokenConfig.ParsedTokens < 0
}

// NewTokenVerifier checks cfg and returns a verifier. It fetches nothing
// yet: the first Verify (or Refresh) fetches the JWKS.
func NewTokenVerifier(cfg TokenConfig) (*TokenVerifier, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	parsed, err := newParsedTokens(cfg.ParsedTokens)
	if err != nil {
		return nil, err
	}
	return &TokenVerifier{
		cfg:      cfg,
		expected: jwt.Expected{Issuer: cfg.Issuer, AnyAudience: jwt.Audience{cfg.Audience}},
		parsed:   parsed,
		cache: &keyCache{
			url:          cfg.JWKSURL,
			client:       cfg.HTTPClient,
			fetchTimeout: cfg.FetchTimeout,
			minInterval:  cfg.MinRefreshInterval,
			now:          cfg.Now,
		},
	}, nil
}

func (c *TokenConfig) normalize() error {
	switch {
	case c.JWKSURL == "":
		return errors.New("verifier: TokenConfig.JWKSURL is required (<vault address>/v1/<mount>/jwks)")
	case c.Issuer == "":
		return errors.New("verifier: TokenConfig.Issuer is required (the mount's token_issuer, or vault-plugin-secrets-apikeys/<mount>)")
	case c.Audience == "":
		return errors.New("verifier: TokenConfig.Audience is required (the audience this resource server answers to)")
	}
	c.ClockSkew = defaulted(c.ClockSkew, DefaultClockSkew)
	c.RefreshInterval = defaulted(c.RefreshInterval, DefaultRefreshInterval)
	c.MinRefreshInterval = defaulted(c.MinRefreshInterval, DefaultMinRefreshInterval)
	c.StaleIfError = defaulted(c.StaleIfError, DefaultStaleIfError)
	c.FetchTimeout = defaulted(c.FetchTimeout, DefaultFetchTimeout)
	switch {
	case c.ClockSkew > MaxClockSkew:
		return fmt.Errorf("verifier: TokenConfig.ClockSkew %s is over %s", c.ClockSkew, MaxClockSkew)
	case c.RefreshInterval > MaxRefreshInterval:
		return fmt.Errorf("verifier: TokenConfig.RefreshInterval %s is over %s", c.RefreshInterval, MaxRefreshInterval)
	case c.MinRefreshInterval < LeastMinRefreshInterval || c.MinRefreshInterval > c.RefreshInterval:
		return fmt.Errorf("verifier: TokenConfig.MinRefreshInterval %s must be between %s and RefreshInterval (%s)", c.MinRefreshInterval, LeastMinRefreshInterval, c.RefreshInterval)
	case c.StaleIfError > MaxStaleIfError:
		return fmt.Errorf("verifier: TokenConfig.StaleIfError %s is over %s", c.StaleIfError, MaxStaleIfError)
	case c.FetchTimeout < 0:
		return fmt.Errorf("verifier: TokenConfig.FetchTimeout %s is negative", c.FetchTimeout)
	}
	if c.ParsedTokens == 0 {
		c.ParsedTokens = DefaultParsedTokens
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: NewTransport()}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// defaulted maps 0 to def and a negative value to 0 (none).
func defaulted(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Claims are the verified claims of a token. Its slices are shared with
// the verifier's kept tokens: read them, do not modify them.
type Claims struct {
	Issuer string
	// Subject is the client (API consumer) whose key was exchanged.
	Subject  string
	Audience []string
	// Scopes are the granted scopes; a pattern such as "orders:*" covers
	// the scopes below it (HasScope).
	Scopes    []string
	Expiry    time.Time
	NotBefore time.Time // zero when the token has no nbf
	IssuedAt  time.Time // zero when the token has no iat
	// ID is the token's jti, unique per exchange (for replay or audit logs).
	ID string
	// KeyID is the kid of the signing key that verified it.
	KeyID string
}

// HasScope reports whether the granted scopes cover scope, with the
// plugin's wildcard rules.
func (c *Claims) HasScope(scope string) bool { return scopes.Covers(c.Scopes, scope) }

// tokenClaims is the token's payload as the mount writes it.
type tokenClaims struct {
	jwt.Claims
	Scope string `json:"scope"`
}

// Verify checks token and returns its claims, or an *Error. Every call
// checks the EdDSA signature (with the public key parsed when the JWKS was
// fetched), the issuer, that aud names the configured audience, exp (which
// must be present) and nbf/iat within the clock skew, and that the granted
// scopes cover each of required. ctx bounds waiting for a JWKS fetch.
func (v *TokenVerifier) Verify(ctx context.Context, token string, required ...string) (*Claims, error) {
	switch {
	case token == "":
		return nil, newError(ErrInvalid, CodeMissing, "no token", nil)
	case len(token) > MaxTokenBytes:
		return nil, newError(ErrInvalid, CodeMalformed, fmt.Sprintf("token longer than %d bytes", MaxTokenBytes), nil)
	}
	now := v.cfg.Now()
	p, hash, cached := v.parsed.get(token, now)
	if !cached {
		jws, err := jose.ParseSignedCompact(token, edDSAOnly)
		if err != nil {
			return nil, newError(ErrInvalid, CodeMalformed, "not an EdDSA-signed compact JWS", err)
		}
		p = &parsedToken{jws: jws, kid: jws.Signatures[0].Header.KeyID}
	}
	pub, err := v.key(ctx, p.kid)
	if err != nil {
		return nil, err
	}
	payload, err := p.jws.Verify(pub)
	if err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, newError(ErrInvalid, CodeBadSignature, fmt.Sprintf("signature does not verify with key %q", p.kid), nil)
		}
		return nil, newError(ErrInvalid, CodeMalformed, "the JWS does not verify", err)
	}
	if !cached {
		// The claims are decoded with encoding/json rather than go-jose's
		// copy of it, which jwt.JSONWebToken.Claims uses: the standard
		// library's is about twice as fast here, and the claim types
		// (jwt.NumericDate, jwt.Audience) decode the same with either.
		if err := json.Unmarshal(payload, &p.claims); err != nil {
			return nil, newError(ErrInvalid, CodeMalformed, "claims are not a JSON object of JWT claims", err)
		}
		p.granted = scopes.Split(p.claims.Scope)
		if p.claims.Expiry != nil {
			p.until = p.claims.Expiry.Time().Add(v.cfg.ClockSkew)
			v.parsed.put(hash, p)
		}
	}
	if err := v.checkClaims(&p.claims, p.granted, required, now); err != nil {
		return nil, err
	}
	return claimsOf(&p.claims, p.granted, p.kid), nil
}

// checkClaims checks the registered claims and the scopes.
func (v *TokenVerifier) checkClaims(c *tokenClaims, granted, required []string, now time.Time) error {
	if c.Expiry == nil {
		return newError(ErrInvalid, CodeMissingExpiry, "token has no exp", nil)
	}
	exp := v.expected
	exp.Time = now
	switch err := c.Claims.ValidateWithLeeway(exp, v.cfg.ClockSkew); {
	case err == nil:
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return newError(ErrInvalid, CodeWrongIssuer, fmt.Sprintf("iss %q is not %q", c.Issuer, v.cfg.Issuer), nil)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return newError(ErrForbidden, CodeForbiddenAudience, fmt.Sprintf("aud %q does not name %q", []string(c.Audience), v.cfg.Audience), nil)
	case errors.Is(err, jwt.ErrExpired):
		return newError(ErrExpired, CodeExpired, "expired at "+c.Expiry.Time().UTC().Format(time.RFC3339), nil)
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return newError(ErrInvalid, CodeNotYetValid, "nbf or iat is in the future beyond the clock skew", nil)
	default:
		return newError(ErrInvalid, CodeMalformed, "claims", err)
	}
	for _, s := range required {
		if !scopes.Covers(granted, s) {
			return newError(ErrForbidden, CodeForbiddenScope, fmt.Sprintf("scope %q is not granted", s), nil)
		}
	}
	return nil
}

func claimsOf(c *tokenClaims, granted []string, kid string) *Claims {
	out := &Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: []string(c.Audience),
		Scopes:   granted,
		Expiry:   c.Expiry.Time(),
		ID:       c.ID,
		KeyID:    kid,
	}
	if c.NotBefore != nil {
		out.NotBefore = c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time()
	}
	return out
}

// key returns the public key kid names, from a JWKS no older than
// RefreshInterval (or, while fetching fails, RefreshInterval +
// StaleIfError). An unknown kid refetches the set first, within the rate
// cap: a key the mount published since the last fetch is found, a
// withdrawn or made-up one is not.
func (v *TokenVerifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	snap, err := v.current(ctx)
	if err != nil {
		return nil, err
	}
	if pub, ok := snap.keys[kid]; ok {
		return pub, nil
	}
	if kid == "" {
		return nil, newError(ErrInvalid, CodeUnknownKey, "token names no kid", nil)
	}
	fresh, err := v.cache.refresh(ctx)
	if fresh != nil {
		if pub, ok := fresh.keys[kid]; ok {
			return pub, nil
		}
	}
	if err != nil && !errors.Is(err, errRateCapped) {
		// The key may have been published since; we cannot tell.
		return nil, newError(ErrUnavailable, CodeJWKSUnavailable, fmt.Sprintf("kid %q is not in the cached JWKS and fetching it again failed", kid), err)
	}
	return nil, newError(ErrInvalid, CodeUnknownKey, fmt.Sprintf("kid %q is not an Ed25519 key of the JWKS", kid), nil)
}

// current returns a snapshot fresh enough to verify with, fetching one if
// the last is older than RefreshInterval.
func (v *TokenVerifier) current(ctx context.Context) (*keySnapshot, error) {
	now := v.cfg.Now()
	snap := v.cache.snap.Load()
	if snap != nil && now.Sub(snap.fetchedAt) < v.cfg.RefreshInterval {
		return snap, nil
	}
	fresh, err := v.cache.refresh(ctx)
	if err == nil {
		return fresh, nil
	}
	if fresh != nil && now.Sub(fresh.fetchedAt) < v.cfg.RefreshInterval+v.cfg.StaleIfError {
		return fresh, nil
	}
	return nil, newError(ErrUnavailable, CodeJWKSUnavailable, "no JWKS fetched within RefreshInterval+StaleIfError", err)
}

// Refresh fetches the JWKS now (within the rate cap), e.g. at start-up so
// the first request does not wait, or right after withdrawing a signing
// key. It returns an *Error of kind ErrUnavailable if the fetch fails or
// the rate cap forbids it.
func (v *TokenVerifier) Refresh(ctx context.Context) error {
	if _, err := v.cache.refresh(ctx); err != nil {
		return newError(ErrUnavailable, CodeJWKSUnavailable, "fetching "+v.cfg.JWKSURL, err)
	}
	return nil
}

// KeyIDs returns the kids of the Ed25519 keys of the JWKS held now (none
// before the first fetch), for health checks and logs.
func (v *TokenVerifier) KeyIDs() []string {
	snap := v.cache.snap.Load()
	if snap == nil {
		return nil
	}
	out := make([]string, 0, len(snap.keys))
	for kid := range snap.keys {
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}

// Fetches is how many JWKS fetches the verifier has started (for metrics,
// and to see the rate cap at work).
func (v *TokenVerifier) Fetches() int64 { return v.cache.fetches.Load() }
