package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

func newKey(t *testing.T, prefix, env string, bits int) string {
	t.Helper()
	k, err := keyformat.Generate(rand.Reader, prefix, env, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// nearMisses are look-alikes of key that a regex matches and the checksum
// rejects.
func nearMisses(key string) []string {
	last := key[len(key)-1]
	swapped := byte('A')
	if last == 'A' {
		swapped = 'B'
	}
	return []string{
		key[:len(key)-1] + string(swapped), // wrong checksum
		key[:len(key)-1],                   // truncated
		key + "x",                          // one character too many
		strings.ToUpper(key[:1]) + key[1:], // invalid prefix
	}
}

func runCheck(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// assertNoKey fails when text holds any of keys: counts and errors may go
// to logs, keys must not.
func assertNoKey(t *testing.T, text string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(text, k[len(k)-20:]) {
			t.Fatalf("stderr repeats a candidate: %q", text)
		}
	}
}

func TestCandidatesFromStdin(t *testing.T) {
	prod, dev, long := newKey(t, "ak", "prod", 256), newKey(t, "ak", "dev", 128), newKey(t, "acme", "staging2", 1024)
	var in []string
	for _, k := range []string{prod, dev, long} {
		in = append(in, "  "+k+"  ")
		in = append(in, nearMisses(k)...)
	}
	in = append(in, "", "not a key")
	code, out, errb := runCheck(t, strings.Join(in, "\n"))
	if code != exitFound {
		t.Fatalf("exit %d, want %d (%s)", code, exitFound, errb)
	}
	if want := prod + "\n" + dev + "\n" + long + "\n"; out != want {
		t.Fatalf("stdout keeps %d lines, want the 3 issued keys", strings.Count(out, "\n"))
	}
	if !strings.Contains(errb, "3 of 16 candidates") {
		t.Fatalf("stderr = %q", errb)
	}
	assertNoKey(t, errb, append([]string{prod, dev, long}, nearMisses(prod)...)...)
}

func TestPrefixFilterAndArgs(t *testing.T) {
	ak, acme := newKey(t, "ak", "prod", 256), newKey(t, "acme", "prod", 256)
	code, out, _ := runCheck(t, "", "-prefix", "acme, other", ak, acme)
	if code != exitFound || out != acme+"\n" {
		t.Fatalf("exit %d, %d lines kept; want only the acme key", code, strings.Count(out, "\n"))
	}
	code, out, _ = runCheck(t, "", "-prefix", "other", ak, acme)
	if code != exitNone || out != "" {
		t.Fatalf("exit %d with nothing kept, want %d", code, exitNone)
	}
}

func TestNothingWellFormed(t *testing.T) {
	code, out, errb := runCheck(t, strings.Join(nearMisses(newKey(t, "ak", "prod", 256)), "\n"))
	if code != exitNone || out != "" || !strings.Contains(errb, "0 of 4 candidates") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errb)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "report.json")
	if err := os.WriteFile(notJSON, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"bad prefix":       {args: []string{"-prefix", "Ak"}, want: "key_prefix must be"},
		"unknown flag":     {args: []string{"-nope"}, want: "flag provided but not defined"},
		"report and args":  {args: []string{"-gitleaks", notJSON, "x"}, want: "takes no candidate"},
		"keys, no report":  {args: []string{"-keys"}, want: "-keys needs -gitleaks"},
		"missing report":   {args: []string{"-gitleaks", filepath.Join(dir, "absent.json")}, want: "no such file"},
		"report not json":  {args: []string{"-gitleaks", notJSON}, want: "not a gitleaks JSON report"},
		"line over 64 KiB": {stdin: strings.Repeat("a", maxLine+1), want: "token too long"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errb := runCheck(t, tc.stdin, tc.args...)
			if code != exitError || !strings.Contains(errb, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errb, exitError, tc.want)
			}
		})
	}
}

func TestGitleaksReport(t *testing.T) {
	key := newKey(t, "ak", "prod", 256)
	bad := nearMisses(key)[0]
	finding := func(rule, secret string) map[string]any {
		// Extra holds a field this command does not know; it must pass through.
		return map[string]any{"RuleID": rule, "Secret": secret, "Match": secret, "File": "app.env", "StartLine": 3, "Extra": map[string]any{"n": 1}}
	}
	report := []map[string]any{
		finding("vault-apikeys-key", key),
		finding("vault-apikeys-key", bad),
		finding("vault-apikeys-acme", "REDACTED"),
		finding("aws-access-token", "AKIAIOSFODNN7EXAMPLE"),
	}
	path := filepath.Join(t.TempDir(), "report.json")
	raw, _ := json.Marshal(report)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runCheck(t, "", "-gitleaks", path)
	if code != exitFound {
		t.Fatalf("exit %d (%s)", code, errb)
	}
	var kept []map[string]any
	if err := json.Unmarshal([]byte(out), &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 3 || kept[0]["Secret"] != key || kept[1]["Secret"] != "REDACTED" || kept[2]["RuleID"] != "aws-access-token" {
		t.Fatalf("kept %d findings, want the key, the redacted one and the other rule's", len(kept))
	}
	if e, ok := kept[0]["Extra"].(map[string]any); !ok || e["n"] != float64(1) || kept[0]["StartLine"] != float64(3) {
		t.Fatalf("a finding's fields were not passed through: %v", kept[0]["Extra"])
	}
	if !strings.Contains(errb, "4 findings: 1 well-formed keys, 1 dropped") {
		t.Fatalf("stderr = %q", errb)
	}
	assertNoKey(t, errb, key, bad)

	// -keys: the distinct well-formed keys only, a key found twice once.
	raw, _ = json.Marshal(append(report, finding("vault-apikeys-key", key)))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runCheck(t, "", "-keys", "-gitleaks", path); code != exitFound || out != key+"\n" {
		t.Fatalf("-keys: exit %d, %d lines; want %d and the one key", code, strings.Count(out, "\n"), exitFound)
	}

	// Only dropped findings: an empty array and exit 1.
	raw, _ = json.Marshal(report[1:2])
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCheck(t, "", "-gitleaks", path)
	if code != exitNone || strings.TrimSpace(out) != "[]" {
		t.Fatalf("exit %d, stdout %q; want %d and []", code, out, exitNone)
	}
	if code, out, _ = runCheck(t, "", "-keys", "-gitleaks", path); code != exitNone || out != "" {
		t.Fatalf("-keys: exit %d, stdout %q; want %d and nothing", code, out, exitNone)
	}
}
