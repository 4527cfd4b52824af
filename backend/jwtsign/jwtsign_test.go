package jwtsign

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func claimsAt(now time.Time, ttl time.Duration) Claims {
	return Claims{
		Claims: jwt.Claims{
			Issuer:    "iss-test",
			Subject:   "acme",
			Audience:  jwt.Audience{"orders-api"},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
			ID:        "jti-1",
		},
		Scope: "orders:read orders:write",
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	var s KeySet
	if err := s.Rotate(rand.Reader, t0, 0, false); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Current.Sign(claimsAt(t0, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Signatures[0].Header
	if h.KeyID != s.Current.KID || h.Algorithm != "EdDSA" || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header = %+v", h)
	}
	exp := jwt.Expected{Issuer: "iss-test", AnyAudience: jwt.Audience{"orders-api"}, Time: t0.Add(time.Minute)}
	c, err := Verify(tok, s.JWKS(t0), exp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "acme" || c.Scope != "orders:read orders:write" || c.ID != "jti-1" {
		t.Fatalf("claims = %+v", c)
	}

	cases := []struct {
		name string
		exp  jwt.Expected
		set  jose.JSONWebKeySet
		want string
	}{
		{"expired", jwt.Expected{Time: t0.Add(6 * time.Minute)}, s.JWKS(t0), "expired"},
		{"wrong audience", jwt.Expected{AnyAudience: jwt.Audience{"billing"}, Time: t0}, s.JWKS(t0), "audience"},
		{"wrong issuer", jwt.Expected{Issuer: "other", Time: t0}, s.JWKS(t0), "issuer"},
		{"unknown kid", jwt.Expected{Time: t0}, jose.JSONWebKeySet{}, "JWK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tok, tc.set, tc.exp, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	// A token whose payload was altered fails the signature check.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	if _, err := Verify(forged, s.JWKS(t0), jwt.Expected{Time: t0}, 0); err == nil {
		t.Fatal("forged token verified")
	}
}

func TestRotationKeepsPreviousUntilTokensExpire(t *testing.T) {
	var s KeySet
	if !s.Due(t0, time.Hour) {
		t.Fatal("an empty set must be due")
	}
	if err := s.Rotate(rand.Reader, t0, 5*time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if s.Due(t0.Add(59*time.Minute), time.Hour) || !s.Due(t0.Add(time.Hour), time.Hour) {
		t.Fatal("Due does not follow the period")
	}
	k1 := s.Current
	tok1, err := k1.Sign(claimsAt(t0, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r1 := t0.Add(time.Minute)
	if err := s.Rotate(rand.Reader, r1, 5*time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if len(k1.Seed) != 0 {
		t.Fatal("rotated-out key kept its private half")
	}
	if _, err := k1.Sign(claimsAt(r1, time.Minute)); err != ErrNoPrivateKey {
		t.Fatalf("a previous key signed: %v", err)
	}
	r2 := r1.Add(time.Minute)
	if err := s.Rotate(rand.Reader, r2, 5*time.Minute, false); err != nil {
		t.Fatal(err)
	}
	kids := func(now time.Time) []string {
		var out []string
		for _, k := range s.JWKS(now).Keys {
			out = append(out, k.KeyID)
		}
		return out
	}
	// Two rotations within token_ttl: k1 is still published, tok1 verifies.
	if got := kids(r2); len(got) != 3 || got[2] != k1.KID {
		t.Fatalf("published = %v, want current and both previous", got)
	}
	if _, err := Verify(tok1, s.JWKS(r2), jwt.Expected{Time: r2}, 0); err != nil {
		t.Fatalf("token of a previous key no longer verifies: %v", err)
	}
	// After k1's keep period only current and the newest previous remain.
	later := r1.Add(5 * time.Minute)
	if got := kids(later); len(got) != 2 {
		t.Fatalf("published after keep = %v", got)
	}
	if !s.Prune(later) || len(s.Previous) != 1 {
		t.Fatalf("prune kept %d previous keys", len(s.Previous))
	}
	// The newest previous key leaves too once its own keep period ends:
	// every token it signed has expired, and a key rotated out after a
	// compromise must not stay trusted until the next rotation.
	end := r2.Add(5 * time.Minute)
	if got := kids(end.Add(-time.Second)); len(got) != 2 {
		t.Fatalf("published just before the newest previous key's keep ends = %v", got)
	}
	if got := kids(end); len(got) != 1 || got[0] != s.Current.KID {
		t.Fatalf("published after every keep period = %v, want only the current key", got)
	}
	if !s.Prune(end) || len(s.Previous) != 0 {
		t.Fatalf("prune kept %d previous keys past their keep period", len(s.Previous))
	}
}

// A rotation with keep 0 (revoke_previous after a suspected compromise)
// withdraws the outgoing key at once: its tokens stop verifying.
func TestRotationWithoutKeepWithdrawsOutgoingKey(t *testing.T) {
	var s KeySet
	if err := s.Rotate(rand.Reader, t0, 5*time.Minute, false); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Current.Sign(claimsAt(t0, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	old := s.Current.KID
	if err := s.Rotate(rand.Reader, t0.Add(time.Minute), 0, false); err != nil {
		t.Fatal(err)
	}
	set := s.JWKS(t0.Add(time.Minute))
	if len(set.Keys) != 1 || set.Keys[0].KeyID == old || len(s.Previous) != 0 {
		t.Fatalf("after a rotation without keep: published %+v, %d previous stored", set.Keys, len(s.Previous))
	}
	if _, err := Verify(tok, set, jwt.Expected{Time: t0.Add(time.Minute)}, 0); err == nil {
		t.Fatal("a token of the withdrawn key still verifies")
	}
}

func TestJWKSHasNoPrivateMaterial(t *testing.T) {
	var s KeySet
	if err := s.Rotate(rand.Reader, t0, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(s.JWKS(t0))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte(`"d"`)) {
		t.Fatalf("JWKS contains a private key: %s", body)
	}
	var back jose.JSONWebKeySet
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Keys) != 1 || back.Keys[0].KeyID != s.Current.KID || !back.Keys[0].IsPublic() || back.Keys[0].Algorithm != "EdDSA" {
		t.Fatalf("JWKS = %s", body)
	}
}

// The next key is published PrepublishLead before the period ends, becomes
// current at rotation with its period starting then, and a rotation with
// fresh set (suspected compromise) discards it for a new key.
func TestNextKeyPrepublishedThenPromoted(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const period = 48 * time.Hour
	s := &KeySet{}
	if err := s.Rotate(rand.Reader, t0, 0, false); err != nil {
		t.Fatal(err)
	}
	lead := PrepublishLead(period)
	if lead != 24*time.Hour || PrepublishLead(time.Hour) != 30*time.Minute {
		t.Fatalf("PrepublishLead = %s, %s", lead, PrepublishLead(time.Hour))
	}
	if s.NeedsNext(t0.Add(period-lead-time.Second), period) {
		t.Fatal("next key wanted before the lead")
	}
	at := t0.Add(period - lead)
	if !s.NeedsNext(at, period) {
		t.Fatal("no next key wanted at the lead")
	}
	if err := s.PrepareNext(rand.Reader, at); err != nil {
		t.Fatal(err)
	}
	next := s.Next.KID
	if s.NeedsNext(at, period) || len(s.Published(at)) != 2 || s.Published(at)[1].KID != next {
		t.Fatalf("after PrepareNext: published %d keys", len(s.Published(at)))
	}
	end := t0.Add(period)
	if err := s.Rotate(rand.Reader, end, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if s.Current.KID != next || s.Next != nil || !s.Current.CreatedAt.Equal(end) || s.Due(end.Add(period-time.Second), period) {
		t.Fatalf("promotion: current %s (want %s), created %s", s.Current.KID, next, s.Current.CreatedAt)
	}
	// A fresh rotation never reuses a prepared key.
	if err := s.PrepareNext(rand.Reader, end); err != nil {
		t.Fatal(err)
	}
	prepared := s.Next.KID
	if err := s.Rotate(rand.Reader, end, 0, true); err != nil {
		t.Fatal(err)
	}
	if s.Current.KID == prepared || s.Next != nil {
		t.Fatal("a fresh rotation reused the prepared key")
	}
}
