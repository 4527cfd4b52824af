package verifier

import (
	"crypto/sha256"
	"time"

	"github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultParsedTokens is how many verified tokens a TokenVerifier keeps
// parsed by default (TokenConfig.ParsedTokens).
const DefaultParsedTokens = 10000

// parsedToken is what go-jose's parse and the claims decoding made of one
// token: a pure function of the token's bytes. Verify still checks its
// signature and claims on every call; only the decoding is not redone.
type parsedToken struct {
	jws     *jose.JSONWebSignature // read-only once stored: go-jose's Verify only reads it
	kid     string
	claims  tokenClaims
	granted []string
	until   time.Time // exp + skew: past it the token verifies no more
}

// parsedTokens keeps the parsed form of tokens whose signature verified,
// keyed by the SHA-256 of the token. A client sends the same token with
// every request until it expires, and parsing the JWS and decoding its
// claims is about a fifth of a verification (the rest is the Ed25519
// check, done every time). Only verified tokens are kept, so tokens made
// up by a caller do not displace them; each leaves at its exp.
type parsedTokens struct {
	entries *lru.Cache[[sha256.Size]byte, *parsedToken]
}

func newParsedTokens(size int) (*parsedTokens, error) {
	if size <= 0 {
		return nil, nil
	}
	entries, err := lru.New[[sha256.Size]byte, *parsedToken](size)
	if err != nil {
		return nil, err
	}
	return &parsedTokens{entries: entries}, nil
}

// get returns the parsed form of token if it is kept and not past its exp.
func (p *parsedTokens) get(token string, now time.Time) (*parsedToken, [sha256.Size]byte, bool) {
	if p == nil {
		return nil, [sha256.Size]byte{}, false
	}
	h := sha256.Sum256([]byte(token))
	t, ok := p.entries.Get(h)
	if !ok {
		return nil, h, false
	}
	if now.After(t.until) {
		p.entries.Remove(h)
		return nil, h, false
	}
	return t, h, true
}

func (p *parsedTokens) put(h [sha256.Size]byte, t *parsedToken) {
	if p != nil {
		p.entries.Add(h, t)
	}
}
