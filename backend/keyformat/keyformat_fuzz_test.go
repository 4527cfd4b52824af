package keyformat

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzParseTypo takes any text that parses as a key (FuzzParse in
// keyformat_test.go covers what Parse refuses) and checks that every
// single-character substitution and every swap of two neighbouring distinct
// characters after the separators is refused: a CRC32 catches every burst
// of up to 32 bits, so a typo never passes as another valid key.
func FuzzParseTypo(f *testing.F) {
	f.Add(mustGenerate(f, 1, "ak", "prod", DefaultEntropyBits), uint8(0))
	f.Add(mustGenerate(f, 2, "x", "0", MinEntropyBits), uint8(1))
	f.Add(mustGenerate(f, 3, "abcdefghijklmnop", "abcdefghijklmnop", MaxEntropyBits), uint8(60))
	f.Fuzz(func(t *testing.T, key string, shift uint8) {
		p, err := Parse(key)
		if err != nil {
			return
		}
		if got := p.Prefix + "_" + p.Env + "_" + p.Random + p.Checksum; got != key {
			t.Fatalf("parts %+v re-assemble to %q, not the input", p, got)
		}
		start := len(p.Prefix) + 1 + len(p.Env) + 1
		b := []byte(key)
		for i := start; i < len(b); i++ {
			orig := b[i]
			// Another character of the alphabet, chosen by the fuzzer.
			b[i] = alphabet[(strings.IndexByte(alphabet, orig)+1+int(shift)%61)%62]
			if _, err := Parse(string(b)); err == nil {
				t.Fatalf("a substitution at position %d was accepted", i)
			}
			b[i] = orig
			if i+1 < len(b) && b[i] != b[i+1] {
				b[i], b[i+1] = b[i+1], b[i]
				if _, err := Parse(string(b)); err == nil {
					t.Fatalf("a swap at position %d was accepted", i)
				}
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
	})
}

// FuzzGenerate generates keys from arbitrary prefixes, environments, sizes
// and random streams. Generate refuses exactly the settings the validators
// refuse, and everything it produces parses back to the same parts, with the
// random part as long as the entropy asked for needs.
func FuzzGenerate(f *testing.F) {
	f.Add("ak", "prod", DefaultEntropyBits, uint64(1))
	f.Add("x", "0", MinEntropyBits, uint64(2))
	f.Add("abcdefghijklmnop", "abcdefghijklmnop", MaxEntropyBits, uint64(3))
	f.Add("Ak", "prod", DefaultEntropyBits, uint64(4))
	f.Add("ak", "pr_od", DefaultEntropyBits, uint64(5))
	f.Add("ak", "prod", MinEntropyBits-1, uint64(6))
	f.Add("ak", "prod", MaxEntropyBits+1, uint64(7))
	f.Add("1ak", "", -1, uint64(8))
	f.Fuzz(func(t *testing.T, prefix, env string, bits int, seed uint64) {
		key, err := Generate(rand.NewChaCha8(seedBytes(seed)), prefix, env, bits)
		valid := ValidPrefix(prefix) == nil && ValidEnv(env) == nil && bits >= MinEntropyBits && bits <= MaxEntropyBits
		if (err == nil) != valid {
			t.Fatalf("Generate(%q, %q, %d) error %v, but the settings are valid=%v", prefix, env, bits, err, valid)
		}
		if err != nil {
			return
		}
		p, err := Parse(key)
		if err != nil {
			t.Fatalf("a generated key does not parse: %v", err)
		}
		if p.Prefix != prefix || p.Env != env || len(p.Random) != RandomLength(bits) {
			t.Fatalf("generated key parses to %q/%q with %d random characters, want %q/%q with %d", p.Prefix, p.Env, len(p.Random), prefix, env, RandomLength(bits))
		}
		// The same stream gives the same key: generation depends only on
		// the randomness it is handed.
		again, err := Generate(rand.NewChaCha8(seedBytes(seed)), prefix, env, bits)
		if err != nil || again != key {
			t.Fatalf("the same random stream gave a different key (%v)", err)
		}
	})
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := 0; i < 8; i++ {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}
