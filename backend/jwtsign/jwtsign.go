package jwtsign

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Algorithm is the only JWS algorithm the key set signs with.
const Algorithm = jose.EdDSA

// KeyPair is one signing key. Seed (the private key) is set only while the
// key is current; a rotated-out key keeps just its public half.
type KeyPair struct {
	KID       string    `json:"kid"`
	Seed      []byte    `json:"seed,omitempty"`
	Public    []byte    `json:"public"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is when the key stopped signing; KeepUntil is how long its
	// public half stays published (tokens it signed expire before then).
	RetiredAt time.Time `json:"retired_at,omitempty"`
	KeepUntil time.Time `json:"keep_until,omitempty"`
	// PublishedAt is when the key was first published (for a next key,
	// before it signs).
	PublishedAt time.Time `json:"published_at,omitempty"`
	// MaxTokenTTL is the longest token lifetime in force while the key
	// signed, when that was longer than the current token_ttl: a rotated
	// out key stays published that long, so lowering token_ttl never
	// strands tokens signed before.
	MaxTokenTTL time.Duration `json:"max_token_ttl,omitempty"`
}

// KeepFor is how long a key rotated out now must stay published, given the
// current token lifetime.
func (p *KeyPair) KeepFor(tokenTTL time.Duration) time.Duration {
	return max(tokenTTL, p.MaxTokenTTL)
}

// KeySet is the stored set: the current key, the next one once it is
// published ahead of its use, and the previous ones, newest first.
type KeySet struct {
	Current *KeyPair `json:"current,omitempty"`
	// Next is published (not yet signing) for a while before the
	// scheduled rotation makes it current, so verifiers that cache the
	// JWKS already hold it when the first token it signs reaches them.
	Next     *KeyPair   `json:"next,omitempty"`
	Previous []*KeyPair `json:"previous,omitempty"`
}

// PrepublishLead is how long before a scheduled rotation the next key is
// published: half the rotation period, at most a day, which is longer than
// verifiers usually cache a JWKS (minutes to hours).
func PrepublishLead(period time.Duration) time.Duration {
	return min(period/2, 24*time.Hour)
}

// MinPrepublished is how long the next key must have been published before
// a scheduled rotation may promote it: PrepublishLead, at most an hour. A
// rotation that finds no such key (the period was shortened, or the node
// was down through the lead) publishes one and waits that long.
func MinPrepublished(period time.Duration) time.Duration {
	return min(PrepublishLead(period), time.Hour)
}

// ReadyToPromote reports whether a scheduled rotation may promote the next
// key at now: it has been published long enough, or the current key
// cannot sign at all.
func (s *KeySet) ReadyToPromote(now time.Time, period time.Duration) bool {
	if s.Current == nil || len(s.Current.Seed) != ed25519.SeedSize {
		return true
	}
	return s.Next != nil && !now.Before(s.Next.PublishedAt.Add(MinPrepublished(period)))
}

// NeedsNext reports whether the next key should be published now.
func (s *KeySet) NeedsNext(now time.Time, period time.Duration) bool {
	return s.Current != nil && s.Next == nil &&
		!now.Before(s.Current.CreatedAt.Add(period-PrepublishLead(period)))
}

// PrepareNext generates the next key, to be published before it signs.
func (s *KeySet) PrepareNext(r io.Reader, now time.Time) error {
	nk, err := NewKeyPair(r, now)
	if err != nil {
		return err
	}
	s.Next = nk
	return nil
}

// NewKeyPair generates an Ed25519 key from r. Its key id is the RFC 7638
// thumbprint of the public key, so the id says nothing secret and never
// collides for different keys.
func NewKeyPair(r io.Reader, now time.Time) (*KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		KID:         base64.RawURLEncoding.EncodeToString(tp),
		Seed:        priv.Seed(),
		Public:      []byte(pub),
		CreatedAt:   now,
		PublishedAt: now,
	}, nil
}

// Due reports whether the set needs a (first or scheduled) rotation.
func (s *KeySet) Due(now time.Time, period time.Duration) bool {
	return s.Current == nil || len(s.Current.Seed) != ed25519.SeedSize || !now.Before(s.Current.CreatedAt.Add(period))
}

// Rotate makes the published next key current, or a fresh key when there
// is none or fresh is set (after a suspected compromise nothing stored
// alongside the old key is reused). The old current key loses its private
// half and stays published for keep (the longest lifetime a token it signed
// can have left); keep 0 withdraws it at once.
func (s *KeySet) Rotate(r io.Reader, now time.Time, keep time.Duration, fresh bool) error {
	nk := s.Next
	if nk == nil || fresh {
		var err error
		if nk, err = NewKeyPair(r, now); err != nil {
			return err
		}
	}
	// CreatedAt starts the key's rotation period from when it signs.
	nk.CreatedAt = now
	s.Next = nil
	if old := s.Current; old != nil {
		old.Seed = nil
		old.RetiredAt = now
		old.KeepUntil = now.Add(keep)
		s.Previous = append([]*KeyPair{old}, s.Previous...)
	}
	s.Current = nk
	s.Prune(now)
	return nil
}

// ErrCurrentKey means a withdrawal named the key that signs now: it can
// only leave the set by a rotation, which puts another key in its place.
var ErrCurrentKey = errors.New("is the current signing key")

// ErrNotPublished means a withdrawal named a key the set does not publish
// (withdrawn already, expired, or never this mount's).
var ErrNotPublished = errors.New("is not published")

// Withdraw stops publishing each key in kids at once and forgets it, so no
// later read, reload or rotation can bring it back: a rotated-out key, or
// the pre-published next key (one that has not signed yet; a new one is
// published before the next scheduled rotation). Either every kid is
// withdrawn or, when one is the current key or not published, none is and
// the error wraps ErrCurrentKey or ErrNotPublished after the kid.
func (s *KeySet) Withdraw(now time.Time, kids []string) error {
	drop := make(map[string]bool, len(kids))
	for _, kid := range kids {
		switch {
		case s.Current != nil && kid == s.Current.KID:
			return fmt.Errorf("%q %w", kid, ErrCurrentKey)
		case !s.publishes(now, kid):
			return fmt.Errorf("%q %w", kid, ErrNotPublished)
		}
		drop[kid] = true
	}
	if s.Next != nil && drop[s.Next.KID] {
		s.Next = nil
	}
	kept := make([]*KeyPair, 0, len(s.Previous))
	for _, p := range s.Previous {
		if !drop[p.KID] {
			kept = append(kept, p)
		}
	}
	s.Previous = kept
	return nil
}

// WithdrawAllButCurrent withdraws the next key and every rotated-out key,
// and returns the ids of those that were published.
func (s *KeySet) WithdrawAllButCurrent(now time.Time) []string {
	var kids []string
	for _, p := range s.Published(now) {
		if p != s.Current {
			kids = append(kids, p.KID)
		}
	}
	s.Next = nil
	s.Previous = nil
	return kids
}

// publishes reports whether kid is among the keys published at now.
func (s *KeySet) publishes(now time.Time, kid string) bool {
	for _, p := range s.Published(now) {
		if p.KID == kid {
			return true
		}
	}
	return false
}

// CanPrune reports whether Prune would drop anything.
func (s *KeySet) CanPrune(now time.Time) bool {
	for _, p := range s.Previous {
		if !p.published(now) {
			return true
		}
	}
	return false
}

// Prune drops previous keys whose tokens have all expired (past KeepUntil).
// It reports whether anything was dropped.
func (s *KeySet) Prune(now time.Time) bool {
	kept := s.Previous[:0]
	for _, p := range s.Previous {
		if p.published(now) {
			kept = append(kept, p)
		}
	}
	dropped := len(kept) != len(s.Previous)
	for i := len(kept); i < len(s.Previous); i++ {
		s.Previous[i] = nil
	}
	s.Previous = kept
	return dropped
}

// Published returns the keys a verifier needs at now: the current key, the
// next one once prepared, and every previous key still within its keep
// period. A previous key is not
// kept beyond it, not even the newest: tokens it signed have expired, so it
// verifies nothing legitimate, and after a rotation forced by a suspected
// compromise it would keep verifying forged tokens until the next rotation.
func (s *KeySet) Published(now time.Time) []*KeyPair {
	var out []*KeyPair
	if s.Current != nil {
		out = append(out, s.Current)
	}
	if s.Next != nil {
		out = append(out, s.Next)
	}
	for _, p := range s.Previous {
		if p.published(now) {
			out = append(out, p)
		}
	}
	return out
}

// published reports whether a previous key is still within its keep period.
func (p *KeyPair) published(now time.Time) bool {
	return now.Before(p.KeepUntil)
}

// JWKS renders the published public keys as a JWK Set.
func (s *KeySet) JWKS(now time.Time) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, p := range s.Published(now) {
		set.Keys = append(set.Keys, p.JWK())
	}
	return set
}

// JWK is the public key in JWK form.
func (p *KeyPair) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{
		Key:       ed25519.PublicKey(p.Public),
		KeyID:     p.KID,
		Algorithm: string(Algorithm),
		Use:       "sig",
	}
}

// Claims are the claims of an exchanged token.
type Claims struct {
	jwt.Claims
	// Scope is the space-separated list of granted scopes (RFC 8693 §4.2).
	Scope string `json:"scope,omitempty"`
}

// ErrNoPrivateKey means the key pair cannot sign (it was rotated out).
var ErrNoPrivateKey = errors.New("signing key has no private half")

// Sign returns the compact JWS of claims, signed with EdDSA and carrying
// the key id and typ "JWT" in its header.
func (p *KeyPair) Sign(c Claims) (string, error) {
	if len(p.Seed) != ed25519.SeedSize {
		return "", ErrNoPrivateKey
	}
	priv := ed25519.NewKeyFromSeed(p.Seed)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: Algorithm, Key: jose.JSONWebKey{Key: priv, KeyID: p.KID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// Verify checks a token the way a resource server does: EdDSA only, the key
// picked from set by the token's kid, then the registered claims against
// expected (at expected.Time) with leeway for clock skew.
func Verify(token string, set jose.JSONWebKeySet, expected jwt.Expected, leeway time.Duration) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{Algorithm})
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := tok.Claims(set, &c); err != nil {
		return nil, err
	}
	if err := c.Claims.ValidateWithLeeway(expected, leeway); err != nil {
		return nil, err
	}
	return &c, nil
}
