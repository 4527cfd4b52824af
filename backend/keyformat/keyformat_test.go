package keyformat

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// testReader returns a deterministic, seeded source of bytes so tests are
// reproducible. It stands in for crypto/rand.Reader.
func testReader(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// cycleReader yields 0, 1, ..., 255, 0, 1, ... forever.
type cycleReader struct{ next byte }

func (c *cycleReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// constReader yields the same byte forever.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func mustGenerate(t testing.TB, seed byte, prefix, env string, bits int) string {
	t.Helper()
	key, err := Generate(testReader(seed), prefix, env, bits)
	if err != nil {
		t.Fatalf("Generate(%q, %q, %d): %v", prefix, env, bits, err)
	}
	return key
}

func TestRandomLength(t *testing.T) {
	cases := []struct {
		bits int
		want int
	}{
		{-1, 0},
		{0, 0},
		{1, 1},
		{5, 1},
		{6, 2},
		{MinEntropyBits, 22},
		{DefaultEntropyBits, 43},
		{384, 65},
		{512, 86},
		{MaxEntropyBits, 172},
	}
	for _, tc := range cases {
		if got := RandomLength(tc.bits); got != tc.want {
			t.Errorf("RandomLength(%d) = %d, want %d", tc.bits, got, tc.want)
		}
	}

	// Property: the result is the smallest n with n*log2(62) >= bits.
	for bits := 1; bits <= 2*MaxEntropyBits; bits++ {
		n := RandomLength(bits)
		if float64(n)*math.Log2(62) < float64(bits) {
			t.Fatalf("RandomLength(%d) = %d carries too few bits", bits, n)
		}
		if float64(n-1)*math.Log2(62) >= float64(bits) {
			t.Fatalf("RandomLength(%d) = %d is not minimal", bits, n)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"ak", true},
		{"a", true},
		{"a1", true},
		{"abcdefghijklmnop", true}, // 16
		{"abcdefghijklmnopq", false},
		{"", false},
		{"1ak", false},
		{"Ak", false},
		{"a_k", false},
		{"a-k", false},
		{"a k", false},
		{"ä", false},
		{"ak\n", false},
	}
	for _, tc := range cases {
		err := ValidPrefix(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidPrefix(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "key_prefix must be 1-16 lowercase letters or digits, starting with a letter") {
			t.Errorf("ValidPrefix(%q) error text %q does not explain the rule", tc.in, err)
		}
	}
}

func TestValidEnv(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"prod", true},
		{"1", true},
		{"eu1", true},
		{"0123456789abcdef", true}, // 16
		{"0123456789abcdefg", false},
		{"", false},
		{"Prod", false},
		{"pro_d", false},
		{"pro-d", false},
		{"pröd", false},
		{" prod", false},
	}
	for _, tc := range cases {
		err := ValidEnv(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidEnv(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "lowercase letters or digits") {
			t.Errorf("ValidEnv(%q) error text %q does not explain the rule", tc.in, err)
		}
	}
}

func TestChecksum(t *testing.T) {
	// Golden values computed independently; they pin the alphabet order and
	// padding, which are part of the wire format.
	cases := map[string]string{
		"":            "000000",
		"123456789":   "3jZRME", // CRC32 check value 0xCBF43926
		"ak_prod_abc": "1rIlo8",
	}
	for in, want := range cases {
		if got := Checksum(in); got != want {
			t.Errorf("Checksum(%q) = %q, want %q", in, got, want)
		}
	}

	// Decoding the base62 text must give back the CRC32 for arbitrary input.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		body := make([]byte, r.IntN(64))
		for j := range body {
			body[j] = byte(r.Uint32())
		}
		sum := Checksum(string(body))
		if len(sum) != ChecksumLen {
			t.Fatalf("Checksum length = %d, want %d", len(sum), ChecksumLen)
		}
		var v uint64
		for k := 0; k < len(sum); k++ {
			v = v*62 + uint64(strings.IndexByte(alphabet, sum[k]))
		}
		if want := uint64(crc32.ChecksumIEEE(body)); v != want {
			t.Fatalf("Checksum decodes to %d, want %d", v, want)
		}
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	cases := []struct {
		prefix, env string
		bits        int
	}{
		{"ak", "prod", DefaultEntropyBits},
		{"ak", "dev", MinEntropyBits},
		{"a", "1", MaxEntropyBits},
		{"abcdefghijklmnop", "0123456789abcdef", MaxEntropyBits},
		{"acme2", "staging", 200},
	}
	for i, tc := range cases {
		key := mustGenerate(t, byte(i), tc.prefix, tc.env, tc.bits)
		wantLen := len(tc.prefix) + 1 + len(tc.env) + 1 + RandomLength(tc.bits) + ChecksumLen
		if len(key) != wantLen {
			t.Errorf("len(key) = %d, want %d", len(key), wantLen)
		}
		p, err := Parse(key)
		if err != nil {
			t.Fatalf("Parse(Generate()) failed: %v", err)
		}
		if p.Prefix != tc.prefix || p.Env != tc.env {
			t.Errorf("Parse: prefix/env = %q/%q, want %q/%q", p.Prefix, p.Env, tc.prefix, tc.env)
		}
		if len(p.Random) != RandomLength(tc.bits) {
			t.Errorf("len(Random) = %d, want %d", len(p.Random), RandomLength(tc.bits))
		}
		if got := p.Prefix + "_" + p.Env + "_" + p.Random + p.Checksum; got != key {
			t.Errorf("reassembled key %q != %q", got, key)
		}
		if p.Checksum != Checksum(p.Prefix+"_"+p.Env+"_"+p.Random) {
			t.Errorf("checksum does not match body")
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a := mustGenerate(t, 7, "ak", "prod", DefaultEntropyBits)
	b := mustGenerate(t, 7, "ak", "prod", DefaultEntropyBits)
	c := mustGenerate(t, 8, "ak", "prod", DefaultEntropyBits)
	if a != b {
		t.Errorf("same seed produced different keys")
	}
	if a == c {
		t.Errorf("different seeds produced the same key")
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := []struct {
		name        string
		r           io.Reader
		prefix, env string
		bits        int
		errText     string
	}{
		{"bad prefix", testReader(0), "Ak", "prod", DefaultEntropyBits, "key_prefix"},
		{"empty prefix", testReader(0), "", "prod", DefaultEntropyBits, "key_prefix"},
		{"bad env", testReader(0), "ak", "pr_od", DefaultEntropyBits, "env"},
		{"empty env", testReader(0), "ak", "", DefaultEntropyBits, "env"},
		{"entropy too low", testReader(0), "ak", "prod", MinEntropyBits - 1, "entropy_bits"},
		{"entropy zero", testReader(0), "ak", "prod", 0, "entropy_bits"},
		{"entropy negative", testReader(0), "ak", "prod", -256, "entropy_bits"},
		{"entropy too high", testReader(0), "ak", "prod", MaxEntropyBits + 1, "entropy_bits"},
		{"entropy huge", testReader(0), "ak", "prod", math.MaxInt, "entropy_bits"},
		{"nil reader", nil, "ak", "prod", DefaultEntropyBits, "randomness"},
		{"short reader", bytes.NewReader([]byte{1, 2, 3}), "ak", "prod", DefaultEntropyBits, "randomness"},
		{"empty reader", bytes.NewReader(nil), "ak", "prod", DefaultEntropyBits, "randomness"},
		// Every byte is rejected by the sampler; must fail, not spin.
		{"all rejected", constReader(0xFF), "ak", "prod", DefaultEntropyBits, "unusable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := Generate(tc.r, tc.prefix, tc.env, tc.bits)
			if err == nil {
				t.Fatalf("expected error, got key")
			}
			if key != "" {
				t.Errorf("key returned alongside error")
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("error %q does not mention %q", err, tc.errText)
			}
		})
	}
}

// TestSamplerUniformExact feeds every byte value equally often. With
// rejection sampling each of the 62 characters must then appear exactly the
// same number of times; plain b%62 would over-represent '0'..'7'.
func TestSamplerUniformExact(t *testing.T) {
	// Each cycle of 256 bytes yields 248 accepted bytes, covering every
	// character exactly 4 times. 2480 characters need 2560 input bytes, which
	// fit in the sampler's first read, so the output is exactly 10 cycles.
	const perChar = 40
	n := 62 * perChar
	s, err := randomBase62(&cycleReader{}, n)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[rune]int{}
	for _, c := range s {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Fatalf("saw %d distinct characters, want 62", len(counts))
	}
	for c, k := range counts {
		if k != perChar {
			t.Errorf("char %q appeared %d times, want %d", c, k, perChar)
		}
	}
}

// TestSamplerUniformStatistical is a chi-squared sanity check on a seeded
// source. The seed is fixed, so this cannot flake; the bound is loose (the
// p=1e-6 critical value for 61 degrees of freedom is about 124).
func TestSamplerUniformStatistical(t *testing.T) {
	const n = 62 * 2000
	s, err := randomBase62(testReader(42), n)
	if err != nil {
		t.Fatal(err)
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	expected := float64(n) / 62
	var chi2 float64
	for i := 0; i < len(alphabet); i++ {
		d := float64(counts[alphabet[i]]) - expected
		chi2 += d * d / expected
	}
	if chi2 > 124 {
		t.Errorf("chi-squared = %.1f, distribution looks non-uniform", chi2)
	}
}

// TestSamplerSkipsRejectedBytes checks that bytes >= 248 are discarded
// rather than folded into the output.
func TestSamplerSkipsRejectedBytes(t *testing.T) {
	in := bytes.Repeat([]byte{248, 255, 0, 61, 62, 247}, 100)
	s, err := randomBase62(bytes.NewReader(in), 4)
	if err != nil {
		t.Fatal(err)
	}
	// 0 -> '0', 61 -> 'z', 62 -> '0', 247 -> 247%62 = 61 -> 'z'
	if s != "0z0z" {
		t.Errorf("got %q, want %q", s, "0z0z")
	}
}

// TestParseDetectsTypos replaces every character of a key with every other
// plausible character. CRC32 detects all single-byte errors, so every
// variant must be rejected.
func TestParseDetectsTypos(t *testing.T) {
	key := mustGenerate(t, 1, "ak", "prod", DefaultEntropyBits)
	candidates := alphabet + "_"
	for i := 0; i < len(key); i++ {
		for j := 0; j < len(candidates); j++ {
			c := candidates[j]
			if c == key[i] {
				continue
			}
			typo := key[:i] + string(c) + key[i+1:]
			if _, err := Parse(typo); !errors.Is(err, ErrMalformed) {
				t.Fatalf("typo at position %d (%q -> %q) not detected: %v", i, key[i], c, err)
			}
		}
	}
}

// TestParseDetectsTranspositions swaps every pair of adjacent, distinct
// characters. CRC32 detects all bursts of up to 32 bits, which covers these.
func TestParseDetectsTranspositions(t *testing.T) {
	key := mustGenerate(t, 2, "ak", "prod", DefaultEntropyBits)
	for i := 0; i+1 < len(key); i++ {
		if key[i] == key[i+1] {
			continue
		}
		b := []byte(key)
		b[i], b[i+1] = b[i+1], b[i]
		if _, err := Parse(string(b)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("swap at %d not detected: %v", i, err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	valid := mustGenerate(t, 3, "ak", "prod", DefaultEntropyBits)
	p, err := Parse(valid)
	if err != nil {
		t.Fatal(err)
	}
	body := p.Prefix + "_" + p.Env + "_" + p.Random
	short := mustGenerate(t, 4, "ak", "prod", MinEntropyBits)
	shortP, err := Parse(short)
	if err != nil {
		t.Fatal(err)
	}

	// withSum builds a key whose checksum is correct, so only the property
	// under test makes it invalid.
	withSum := func(b string) string { return b + Checksum(b) }

	wrongSum := []byte(valid)
	if wrongSum[len(wrongSum)-1] == '0' {
		wrongSum[len(wrongSum)-1] = '1'
	} else {
		wrongSum[len(wrongSum)-1] = '0'
	}

	cases := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"underscores only", "__"},
		{"no separators", strings.ReplaceAll(valid, "_", "")},
		{"one separator", "ak_" + p.Random + p.Checksum},
		{"missing prefix", withSum("_prod_" + p.Random)},
		{"missing env", withSum("ak__" + p.Random)},
		{"missing random and checksum", "ak_prod_"},
		{"extra part", withSum("ak_prod_x_" + p.Random)},
		{"trailing separator", valid + "_"},
		{"wrong checksum", string(wrongSum)},
		{"checksum dropped", body},
		{"checksum truncated", valid[:len(valid)-1]},
		{"extra char appended", valid + "A"},
		{"uppercase prefix", withSum("AK_prod_" + p.Random)},
		{"prefix starts with digit", withSum("1ak_prod_" + p.Random)},
		{"prefix too long", withSum("abcdefghijklmnopq_prod_" + p.Random)},
		{"env with dash", withSum("ak_pr-od_" + p.Random)},
		{"env too long", withSum("ak_0123456789abcdefg_" + p.Random)},
		{"non-base62 in random", withSum("ak_prod_" + p.Random[:10] + "-" + p.Random[11:])},
		{"unicode in random", withSum("ak_prod_" + p.Random[:10] + "é" + p.Random[12:])},
		{"unicode in prefix", withSum("äk_prod_" + p.Random)},
		{"fullwidth digit", withSum("ak_prod_" + p.Random[:5] + "１" + p.Random[8:])},
		{"NUL byte", withSum("ak_prod_" + p.Random[:5] + "\x00" + p.Random[6:])},
		{"invalid UTF-8", withSum("ak_prod_" + p.Random[:5] + "\xff" + p.Random[6:])},
		{"leading space", " " + valid},
		{"trailing newline", valid + "\n"},
		{"random one char too short", withSum("ak_prod_" + shortP.Random[1:])},
		{"random too long", withSum("ak_prod_" + strings.Repeat("a", RandomLength(MaxEntropyBits)+1))},
		{"overlong 1025", withSum("ak_prod_" + strings.Repeat("a", 1025))},
		{"overlong huge", strings.Repeat("a", 1<<20)},
		{"overlong underscores", strings.Repeat("_", 1<<20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.key)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", got, err)
			}
			if got != (Parsed{}) {
				t.Errorf("Parse returned non-zero Parsed alongside error")
			}
		})
	}

	// Sanity: the minimum length is accepted.
	if _, err := Parse(short); err != nil {
		t.Errorf("minimum-entropy key rejected: %v", err)
	}
}

// TestParseErrorDoesNotLeakKey makes sure no error text echoes the key or any
// meaningful part of it: keys are secrets and errors end up in logs.
func TestParseErrorDoesNotLeakKey(t *testing.T) {
	valid := mustGenerate(t, 5, "ak", "prod", DefaultEntropyBits)
	p, _ := Parse(valid)
	variants := []string{
		valid[:len(valid)-1] + "X",
		valid + "_",
		valid + "é",
		"ak_prod_" + p.Random,
		strings.Repeat(p.Random, 30),
	}
	for _, v := range variants {
		_, err := Parse(v)
		if err == nil {
			t.Fatalf("expected error")
		}
		msg := err.Error()
		if strings.Contains(msg, p.Random[:8]) || strings.Contains(msg, "prod") {
			t.Errorf("error %q leaks key material", msg)
		}
	}
}

func FuzzParse(f *testing.F) {
	for i, bits := range []int{MinEntropyBits, DefaultEntropyBits, MaxEntropyBits} {
		key := mustGenerate(f, byte(i), "ak", "prod", bits)
		f.Add(key)
		f.Add(key[:len(key)-1])
		f.Add(key + "0")
		f.Add(strings.ToUpper(key))
	}
	f.Add("")
	f.Add("_")
	f.Add("__")
	f.Add("ak_prod_")
	f.Add("ak_prod_000000")
	f.Add("a_1_" + strings.Repeat("0", 22) + Checksum("a_1_"+strings.Repeat("0", 22)))
	f.Add("ak_prod_\xff\xfe")
	f.Add(strings.Repeat("x", 2000))

	f.Fuzz(func(t *testing.T, key string) {
		p, err := Parse(key)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if len(key) >= 8 && strings.Contains(err.Error(), key) {
				t.Fatalf("error leaks key: %v", err)
			}
			return
		}
		body := p.Prefix + "_" + p.Env + "_" + p.Random
		if body+p.Checksum != key {
			t.Fatalf("parts do not reassemble to key")
		}
		if Checksum(body) != p.Checksum {
			t.Fatalf("accepted key with wrong checksum")
		}
		if ValidPrefix(p.Prefix) != nil || ValidEnv(p.Env) != nil {
			t.Fatalf("accepted invalid prefix or env")
		}
		if len(p.Random) < RandomLength(MinEntropyBits) {
			t.Fatalf("accepted short random part")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	key := mustGenerate(b, 1, "ak", "prod", DefaultEntropyBits)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	r := testReader(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(r, "ak", "prod", DefaultEntropyBits); err != nil {
			b.Fatal(err)
		}
	}
}
