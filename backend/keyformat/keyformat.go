package keyformat

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
)

const (
	// ChecksumLen is the fixed width of the base62 checksum suffix. 62^6 is
	// about 5.7e10, which exceeds 2^32, so any CRC32 value fits; a fixed width
	// means the checksum can be split off without a separator.
	ChecksumLen = 6

	// MinEntropyBits is the smallest amount of randomness a key may carry.
	// 128 bits puts online and offline guessing far out of reach.
	MinEntropyBits = 128

	// MaxEntropyBits bounds key length so that keys stay well under
	// maxKeyLen and remain practical to pass around in HTTP headers.
	MaxEntropyBits = 1024

	// DefaultEntropyBits is used when a role does not configure entropy.
	DefaultEntropyBits = 256
)

// maxKeyLen is the longest input Parse will look at. The longest valid key is
// 16+1+16+1+RandomLength(MaxEntropyBits)+ChecksumLen = 212 bytes, so this
// leaves room for future growth while keeping attacker-controlled work small.
const maxKeyLen = 1024

// maxPartLen is the maximum length of the prefix and the env parts.
const maxPartLen = 16

// alphabet is the base62 alphabet, in the conventional 0-9A-Za-z order. Its
// order defines the checksum encoding, so it must never change.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed is returned (possibly wrapped) by Parse for any input that is
// not a well-formed key. Callers should treat it like "key not found" and
// must not echo the key back.
var ErrMalformed = errors.New("malformed API key")

// User-facing validation errors. They deliberately do not include the
// offending value: the same checks run on fragments of keys, which are
// secrets.
var (
	errPrefix = errors.New("key_prefix must be 1-16 lowercase letters or digits, starting with a letter")
	errEnv    = errors.New("env must be 1-16 lowercase letters or digits (underscores and dashes are not allowed)")
)

// log2of62 is the number of bits carried by one uniformly chosen base62
// character.
var log2of62 = math.Log2(62)

// RandomLength returns the number of base62 characters needed to carry at
// least entropyBits bits, i.e. ceil(entropyBits / log2(62)). Because log2(62)
// is irrational the quotient is never an exact integer for positive input, so
// floating point rounding cannot push the result across an integer boundary
// for any realistic bit count. Non-positive input yields 0.
func RandomLength(entropyBits int) int {
	if entropyBits <= 0 {
		return 0
	}
	return int(math.Ceil(float64(entropyBits) / log2of62))
}

// ValidPrefix reports whether s may be used as a key prefix.
func ValidPrefix(s string) error {
	if len(s) == 0 || len(s) > maxPartLen || !isLower(s[0]) {
		return errPrefix
	}
	for i := 0; i < len(s); i++ {
		if !isLower(s[i]) && !isDigit(s[i]) {
			return errPrefix
		}
	}
	return nil
}

// ValidEnv reports whether s may be used as a key environment tag.
func ValidEnv(s string) error {
	if len(s) == 0 || len(s) > maxPartLen {
		return errEnv
	}
	for i := 0; i < len(s); i++ {
		if !isLower(s[i]) && !isDigit(s[i]) {
			return errEnv
		}
	}
	return nil
}

// Generate returns a new key with the given prefix and environment carrying
// at least entropyBits bits of randomness read from r. Production callers
// must pass crypto/rand.Reader.
func Generate(r io.Reader, prefix, env string, entropyBits int) (string, error) {
	if err := ValidPrefix(prefix); err != nil {
		return "", err
	}
	if err := ValidEnv(env); err != nil {
		return "", err
	}
	if entropyBits < MinEntropyBits || entropyBits > MaxEntropyBits {
		return "", fmt.Errorf("entropy_bits must be between %d and %d", MinEntropyBits, MaxEntropyBits)
	}
	if r == nil {
		return "", errors.New("no source of randomness")
	}

	random, err := randomBase62(r, RandomLength(entropyBits))
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(env) + 1 + len(random) + ChecksumLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(env)
	b.WriteByte('_')
	b.WriteString(random)
	b.WriteString(Checksum(b.String()))
	return b.String(), nil
}

// maxRefills bounds how many times randomBase62 goes back to the reader. With
// a healthy source each byte is rejected with probability 8/256, so needing
// even a handful of refills is astronomically unlikely; a reader that keeps
// returning rejected bytes (broken or adversarial) gets an error instead of
// an infinite loop.
const maxRefills = 64

// randomBase62 returns n characters chosen uniformly from alphabet.
//
// Mapping a byte with b%62 would be biased, because 256 is not a multiple of
// 62: values 0-7 would be hit five times per 256 and the rest four. Instead
// bytes >= 248 (the largest multiple of 62 that fits in a byte) are rejected
// and only the remaining ones are reduced mod 62, which makes every character
// exactly equally likely.
func randomBase62(r io.Reader, n int) (string, error) {
	const limit = 256 - 256%62 // 248

	out := make([]byte, 0, n)
	// Over-read slightly so that one read almost always suffices.
	buf := make([]byte, n+n/8+8)
	for refill := 0; len(out) < n; refill++ {
		if refill == maxRefills {
			return "", errors.New("randomness source produced too many unusable bytes")
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		for _, c := range buf {
			if c >= limit {
				continue
			}
			out = append(out, alphabet[c%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// Checksum returns the CRC32 (IEEE) of body encoded as exactly ChecksumLen
// base62 characters, left-padded with '0'. CRC32 is not a MAC and is not
// meant to be: it only catches accidental corruption cheaply and offline.
func Checksum(body string) string {
	v := crc32.ChecksumIEEE([]byte(body))
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out[:])
}

// Parsed holds the components of a well-formed key. Random excludes the
// checksum.
type Parsed struct {
	Prefix   string
	Env      string
	Random   string
	Checksum string
}

// Parse validates the shape and checksum of key without touching storage, so
// garbage and typos can be rejected before any lookup. All failures wrap
// ErrMalformed, and no error ever contains any part of key.
//
// The work done is bounded: oversized input is rejected before it is
// inspected, and the rest is a single linear pass over at most maxKeyLen
// bytes.
func Parse(key string) (Parsed, error) {
	if len(key) == 0 {
		return Parsed{}, malformed("empty")
	}
	if len(key) > maxKeyLen {
		return Parsed{}, malformed("too long")
	}

	// Exactly two separators. strings.Cut (rather than Split) avoids
	// allocating for inputs full of underscores.
	prefix, rest, ok := strings.Cut(key, "_")
	if !ok {
		return Parsed{}, malformed("wrong number of parts")
	}
	env, tail, ok := strings.Cut(rest, "_")
	if !ok || strings.IndexByte(tail, '_') >= 0 {
		return Parsed{}, malformed("wrong number of parts")
	}
	if ValidPrefix(prefix) != nil {
		return Parsed{}, malformed("invalid prefix")
	}
	if ValidEnv(env) != nil {
		return Parsed{}, malformed("invalid env")
	}

	// Accept exactly the random lengths Generate can produce for permitted
	// entropy settings.
	n := len(tail) - ChecksumLen
	if n < RandomLength(MinEntropyBits) {
		return Parsed{}, malformed("too short")
	}
	if n > RandomLength(MaxEntropyBits) {
		return Parsed{}, malformed("random part too long")
	}
	for i := 0; i < len(tail); i++ {
		if !isBase62(tail[i]) {
			return Parsed{}, malformed("invalid character")
		}
	}

	random, sum := tail[:n], tail[n:]
	want := Checksum(key[:len(key)-ChecksumLen])
	// The checksum is public information, but a constant-time comparison
	// costs nothing and keeps timing independent of where a typo is.
	if subtle.ConstantTimeCompare([]byte(sum), []byte(want)) != 1 {
		return Parsed{}, malformed("checksum mismatch")
	}
	return Parsed{Prefix: prefix, Env: env, Random: random, Checksum: sum}, nil
}

// malformed wraps ErrMalformed with a fixed reason. The reason must never be
// derived from the key.
func malformed(reason string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, reason)
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isBase62(c byte) bool {
	return isDigit(c) || isLower(c) || (c >= 'A' && c <= 'Z')
}
