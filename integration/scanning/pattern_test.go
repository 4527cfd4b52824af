package scanning

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// The GitHub custom pattern cannot be run here (GitHub's Hyperscan is a
// service), so it is held to the gitleaks rule the other test runs for
// real: the same secret format, and boundaries that agree with \b. Its
// expressions use only constructs Go's regexp shares with Hyperscan.
func TestGitHubPatternAgreesWithGitleaksRule(t *testing.T) {
	root := repoRoot(t)
	fields := githubPatternFields(t, filepath.Join(root, "bootstrap/scanning/github-custom-pattern.md"))
	rule := gitleaksRegex(t, filepath.Join(root, "bootstrap/scanning/gitleaks.toml"))
	if want := `\b` + fields["Secret format"] + `\b`; rule != want {
		t.Fatalf("GitHub's secret format and the gitleaks rule differ:\n github:   %s\n gitleaks: %s", want, rule)
	}
	github := regexp.MustCompile(`(?:` + fields["Before secret"] + `)(` + fields["Secret format"] + `)(?:` + fields["After secret"] + `)`)
	gitleaks := regexp.MustCompile(rule)

	test := fields["Test string"]
	if m := github.FindStringSubmatch(test); m == nil {
		t.Fatal("the documented test string does not match the pattern")
	} else if _, err := keyformat.Parse(m[1]); err == nil {
		t.Fatal("the documented test string is a well-formed key; it must fail its checksum so nobody can hold it")
	}

	for _, env := range []string{"prod", "dev", "eu1", "x", strings.Repeat("e", 16)} {
		for _, bits := range []int{keyformat.MinEntropyBits, keyformat.DefaultEntropyBits, keyformat.MaxEntropyBits} {
			key, err := keyformat.Generate(rand.Reader, "ak", env, bits)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{key, "KEY=" + key + "\n", `"` + key + `",`} {
				if m := github.FindStringSubmatch(text); m == nil || m[1] != key {
					t.Errorf("GitHub pattern misses a key (env %s, %d bits)", env, bits)
				}
				if gitleaks.FindString(text) != key {
					t.Errorf("gitleaks rule misses a key (env %s, %d bits)", env, bits)
				}
			}
			// Glued to a word, or another prefix: no match at all.
			for _, text := range []string{"x" + key, "y_" + key, key + "_z", "bk" + key[2:]} {
				if github.MatchString(text) || gitleaks.MatchString(text) {
					t.Errorf("a pattern matches a look-alike (env %s, %d bits)", env, bits)
				}
			}
			// One base62 character too many: a regex may take the longer
			// word (apikeys-keycheck drops it), never the key inside it.
			if m := github.FindStringSubmatch(key + "Q"); (m != nil && m[1] == key) || gitleaks.FindString(key+"Q") == key {
				t.Errorf("a pattern cuts a key out of a longer word (env %s, %d bits)", env, bits)
			}
		}
	}
}

// githubPatternFields reads the "Field: value" lines of the text block of
// the GitHub pattern document.
func githubPatternFields(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(raw), "```text\n")
	if !ok {
		t.Fatalf("%s has no ```text block", path)
	}
	block, _, _ = strings.Cut(block, "```")
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: %q is not Field: value", path, line)
		}
		out[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"Pattern name", "Secret format", "Before secret", "After secret", "Test string"} {
		if out[k] == "" {
			t.Fatalf("%s: no %s", path, k)
		}
	}
	return out
}

// gitleaksRegex is the regex of the shipped gitleaks rule.
func gitleaksRegex(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^regex = '''(.*)'''$`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("%s: no regex = '''...''' line", path)
	}
	return m[1]
}
