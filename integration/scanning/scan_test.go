package scanning

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// finding is the part of a gitleaks JSON finding the test reads.
type finding struct {
	RuleID, Secret, File, Commit string
	StartLine                    int
}

// issued is a key a real Vault issued, and where the test commits it.
type issued struct {
	mount, key, file string
}

// A repository holding keys of four environments, three entropy settings
// and two prefixes (one key only in history: committed, then deleted) plus
// look-alikes is scanned by the real gitleaks with the shipped rule (and
// the README's adaptation for a second prefix): every key is reported, and
// a wrong prefix, a key glued to text before it and a placeholder are not.
// The look-alikes the regex cannot tell apart (wrong checksum, truncated,
// one character too many) are dropped by apikeys-keycheck, which leaves
// exactly the issued keys; reported to the leaks endpoint they are revoked.
func TestGitleaksFindsIssuedKeys(t *testing.T) {
	root := repoRoot(t)
	gitleaks, keycheck := gitleaksBin(t), keycheckBin(t)

	ak, acme := vaulttest.NewMount(t), vaulttest.NewMount(t)
	vaulttest.Write(t, acme+"/config", map[string]interface{}{"key_prefix": "acme"})
	var keys []issued
	issue := func(m, env string, bits int, file string) {
		vaulttest.Write(t, m+"/config", map[string]interface{}{"entropy_bits": bits})
		vaulttest.SetupClientRole(t, m, "billing", "internal", "r-"+env, map[string]interface{}{"environment": env})
		s := vaulttest.Write(t, m+"/keys/billing/"+env, map[string]interface{}{"role": "r-" + env})
		keys = append(keys, issued{mount: m, key: s.Data["key"].(string), file: file})
	}
	issue(ak, "prod", 256, "config/prod.env")
	issue(ak, "staging", 1024, "deploy/staging.yaml")
	issue(ak, "dev", 128, "scripts/call.sh")
	issue(ak, "eu1", 256, "notes/old.txt") // deleted in the second commit
	issue(acme, "prod", 256, "src/client.go")

	// Look-alikes the rule itself must not report.
	other, err := keyformat.Generate(rand.Reader, "bk", "prod", 256) // well-formed, another prefix
	if err != nil {
		t.Fatal(err)
	}
	neverReported := []string{other, "x" + keys[0].key, "ak_prod_" + strings.Repeat("x", 43)}
	// Look-alikes only the checksum tells apart.
	var checksumOnly []string
	for _, k := range keys {
		checksumOnly = append(checksumOnly, flipLast(k.key), k.key[:len(k.key)-1], k.key+"Q")
	}

	repo := t.TempDir()
	git := gitRunner(t, repo)
	git("init", "-q", "-b", "main")
	contexts := map[string]string{
		"config/prod.env":     "API_KEY=%s\n",
		"deploy/staging.yaml": "billing:\n  api_key: \"%s\"\n",
		"scripts/call.sh":     "curl -H 'X-API-Key: %s' https://api.example/orders\n",
		"notes/old.txt":       "key for the demo: %s (rotate me)\n",
		"src/client.go":       "package client\n\nconst apiKey = `%s`\n",
	}
	for _, k := range keys[:4] {
		writeFile(t, repo, k.file, fmt.Sprintf(contexts[k.file], k.key))
	}
	var nm strings.Builder
	for _, s := range append(append([]string{}, neverReported...), checksumOnly...) {
		fmt.Fprintf(&nm, "token = \"%s\"\n", s)
	}
	writeFile(t, repo, "testdata/lookalikes.toml", nm.String())
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	git("rm", "-q", "notes/old.txt")
	writeFile(t, repo, keys[4].file, fmt.Sprintf(contexts[keys[4].file], keys[4].key))
	git("add", "-A")
	git("commit", "-q", "-m", "second: drop the old note, add the client")

	// The shipped rules, plus the same rule adapted to the acme prefix the
	// way gitleaks.toml tells users to.
	shipped, err := os.ReadFile(filepath.Join(root, "bootstrap/scanning/gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "gitleaks.toml")
	writeFile(t, filepath.Dir(config), filepath.Base(config), string(shipped)+adaptRule(t, string(shipped), "acme"))

	report := filepath.Join(t.TempDir(), "report.json")
	r := runTool(t, repo, nil, "", gitleaks, "git", "--config", config, "--report-format", "json", "--report-path", report, "--no-banner", "--log-level", "warn", ".")
	if r.code != 1 {
		t.Fatalf("gitleaks exited %d, want 1 (leaks found): %s", r.code, r.stderr)
	}
	found := readFindings(t, report)
	secrets := ruleSecrets(found)
	for _, k := range keys {
		if !secrets[k.key] {
			t.Errorf("gitleaks did not report the key in %s", k.file)
		}
	}
	for i, s := range neverReported {
		if secrets[s] {
			t.Errorf("the rule reported look-alike %d (wrong prefix, glued or placeholder)", i)
		}
	}
	allowed := map[string]bool{}
	for _, s := range checksumOnly {
		allowed[s] = true
	}
	for _, k := range keys {
		allowed[k.key] = true
	}
	lookalikesScanned := false
	for _, f := range found {
		lookalikesScanned = lookalikesScanned || f.File == "testdata/lookalikes.toml"
		if strings.HasPrefix(f.RuleID, "vault-apikeys") && !allowed[f.Secret] {
			t.Errorf("the rule reported something at %s:%d that is neither an issued key nor a known look-alike", f.File, f.StartLine)
		}
		if f.Secret == keys[3].key && f.File != keys[3].file {
			t.Errorf("the deleted key was reported in %s, want %s (from history)", f.File, keys[3].file)
		}
	}
	if !lookalikesScanned {
		t.Error("no finding in testdata/lookalikes.toml: gitleaks did not scan it, so its look-alikes prove nothing")
	}
	if t.Failed() {
		t.FailNow()
	}

	// The validator keeps exactly the issued keys.
	r = runTool(t, repo, nil, "", keycheck, "-gitleaks", report)
	if r.code != 0 {
		t.Fatalf("apikeys-keycheck exited %d: %s", r.code, r.stderr)
	}
	var checked []finding
	if err := json.Unmarshal([]byte(r.stdout), &checked); err != nil {
		t.Fatalf("apikeys-keycheck output is not JSON: %v", err)
	}
	kept := ruleSecrets(checked)
	if len(kept) != len(keys) {
		t.Fatalf("after apikeys-keycheck %d distinct keys remain, want the %d issued (%s)", len(kept), len(keys), r.stderr)
	}
	for _, k := range keys {
		if !kept[k.key] {
			t.Fatalf("apikeys-keycheck dropped the key in %s", k.file)
		}
	}
	if strings.Contains(r.stderr, " 0 dropped") {
		t.Fatalf("apikeys-keycheck dropped nothing, but the rule matched checksum look-alikes: %s", r.stderr)
	}

	// The same list as candidates on stdin, restricted to the two prefixes.
	all := append(append([]string{}, neverReported...), checksumOnly...)
	for _, k := range keys {
		all = append(all, k.key)
	}
	r = runTool(t, repo, nil, strings.Join(all, "\n"), keycheck, "-prefix", "ak,acme")
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.key)
	}
	if got := strings.Fields(r.stdout); r.code != 0 || !sameSet(got, lines) {
		t.Fatalf("apikeys-keycheck on stdin: exit %d, %d lines; want 0 and the %d issued keys (%s)", r.code, len(got), len(keys), r.stderr)
	}

	// What is left goes to leak intake, as the README does it (-keys), and
	// each key is revoked.
	r = runTool(t, repo, nil, "", keycheck, "-keys", "-gitleaks", report)
	if got := strings.Fields(r.stdout); r.code != 0 || !sameSet(got, lines) {
		t.Fatalf("apikeys-keycheck -keys: exit %d, %d lines; want 0 and the %d issued keys (%s)", r.code, len(got), len(keys), r.stderr)
	}
	mountOf := map[string]string{"ak": ak, "acme": acme}
	for _, k := range strings.Fields(r.stdout) {
		prefix, _, _ := strings.Cut(k, "_")
		s := vaulttest.Write(t, mountOf[prefix]+"/leaks", map[string]interface{}{"key": k, "reporter": "gitleaks", "source": repo})
		if s.Data["status"] != "revoked" {
			t.Fatalf("leak report of a %s key: status %v, want revoked", prefix, s.Data["status"])
		}
	}
}

// adaptRule returns the shipped vault-apikeys-key rule for another key
// prefix: a new id, and the prefix replaced in the regex and keywords.
func adaptRule(t *testing.T, shipped, prefix string) string {
	t.Helper()
	_, rule, ok := strings.Cut(shipped, "[[rules]]")
	if !ok {
		t.Fatal("gitleaks.toml has no [[rules]]")
	}
	out := strings.NewReplacer(
		`id = "vault-apikeys-key"`, `id = "vault-apikeys-`+prefix+`"`,
		`\bak_`, `\b`+prefix+`_`,
		`keywords = ["ak_"]`, `keywords = ["`+prefix+`_"]`,
	).Replace(rule)
	for _, want := range []string{`"vault-apikeys-` + prefix + `"`, `\b` + prefix + `_`, `["` + prefix + `_"]`} {
		if !strings.Contains(out, want) {
			t.Fatalf("adapting the rule to prefix %s: %s not found; update adaptRule and the comment in gitleaks.toml together", prefix, want)
		}
	}
	return "\n[[rules]]" + out
}

func readFindings(t *testing.T, path string) []finding {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []finding
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("gitleaks report: %v", err)
	}
	return out
}

// ruleSecrets is the set of secrets reported by this project's rules.
func ruleSecrets(fs []finding) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		if strings.HasPrefix(f.RuleID, "vault-apikeys") {
			out[f.Secret] = true
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// flipLast changes the last character (part of the checksum).
func flipLast(k string) string {
	if k[len(k)-1] == 'A' {
		return k[:len(k)-1] + "B"
	}
	return k[:len(k)-1] + "A"
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// gitRunner runs git in repo with a fresh HOME and no system config, so
// neither the machine's settings nor hooks take part.
func gitRunner(t *testing.T, repo string) func(args ...string) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is missing: run `make deps` (bootstrap/ci/debian-packages.txt): %v", err)
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=scanner test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=scanner test", "GIT_COMMITTER_EMAIL=test@example.invalid"}
	return func(args ...string) {
		t.Helper()
		if r := runTool(t, repo, env, "", "git", args...); r.code != 0 {
			t.Fatalf("git %s: exit %d: %s", args[0], r.code, r.stderr)
		}
	}
}
