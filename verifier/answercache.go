package verifier

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey names a (key, request) pair by its HMAC-SHA256 under a secret
// made for this verifier: the cache never holds a key, and an entry cannot
// be matched to a key known from elsewhere without the secret.
type cacheKey [sha256.Size]byte

type cachedAnswer struct {
	info *KeyInfo
	// until is when the answer stops being served: CacheTTL after Vault was
	// asked, or the key's exp if that is sooner.
	until time.Time
}

// answerCache is KeyVerifier's bounded cache of active answers.
type answerCache struct {
	ttl     time.Duration
	entries *lru.Cache[cacheKey, cachedAnswer]
	macs    sync.Pool // hash.Hash keyed with the secret
}

func newAnswerCache(size int, ttl time.Duration) (*answerCache, error) {
	entries, err := lru.New[cacheKey, cachedAnswer](size)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	c := &answerCache{ttl: ttl, entries: entries}
	c.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return c, nil
}

// keyFor is the cache key of key asked with req: every field that can
// change the answer is in it, each length-prefixed so no two requests run
// together into the same bytes.
func (c *answerCache) keyFor(key string, req KeyRequest) cacheKey {
	mac := c.macs.Get().(hash.Hash)
	defer c.macs.Put(mac)
	mac.Reset()
	scopes := append([]string(nil), req.Scopes...)
	sort.Strings(scopes)
	pending := "0"
	if req.AllowPending {
		pending = "1"
	}
	for _, f := range []string{key, strings.Join(scopes, " "), req.Audience, req.Environment, req.ClientIP, pending} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		mac.Write(n[:])
		mac.Write([]byte(f))
	}
	var out cacheKey
	mac.Sum(out[:0])
	return out
}

// get returns a cached answer still within its bound at now.
func (c *answerCache) get(k cacheKey, now time.Time) (*KeyInfo, bool) {
	e, ok := c.entries.Get(k)
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		c.entries.Remove(k)
		return nil, false
	}
	return e.info, true
}

// put keeps info, which Vault gave for a request sent at asked, until
// CacheTTL after asked or the key's exp, whichever is sooner. Timing from
// when the request was sent (not answered) keeps the bound honest however
// slow the answer was.
func (c *answerCache) put(k cacheKey, info *KeyInfo, asked time.Time) {
	until := asked.Add(c.ttl)
	if !info.Expiry.IsZero() && info.Expiry.Before(until) {
		until = info.Expiry
	}
	c.entries.Add(k, cachedAnswer{info: info, until: until})
}
