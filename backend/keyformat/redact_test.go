package keyformat

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func genKey(t *testing.T, prefix, env string, bits int, seed byte) string {
	t.Helper()
	k, err := Generate(bytes.NewReader(bytes.Repeat([]byte{seed, seed + 17, seed + 101}, 400)), prefix, env, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRedactKeysOfAnyMount(t *testing.T) {
	keys := []string{
		genKey(t, "ak", "prod", DefaultEntropyBits, 1),
		genKey(t, "ak", "dev", MinEntropyBits, 2),
		genKey(t, "acme2", "staging9", MaxEntropyBits, 3),
		genKey(t, "x", "e", MinEntropyBits, 4),
	}
	// A mistyped key fails its checksum but is as secret: redacted too.
	typo := []byte(keys[0])
	typo[len(typo)-1] ^= 1
	keys = append(keys, string(typo))
	for _, k := range keys {
		tail := k[strings.LastIndexByte(k, '_')+1:]
		for _, s := range []string{
			k,
			`role "` + k + `" not found`,
			"scopes: orders:read," + k + ",x",
			"path keys/svc/" + k + "/rotate",
			"glued:FOO" + k + "_suffix and more",
			k + " " + k,
			"error converting input " + k + " for field \"ttl\"",
		} {
			got := Redact(s)
			if strings.Contains(got, tail) || strings.Contains(got, tail[:20]) {
				t.Fatalf("Redact(%q) = %q keeps the key", s, got)
			}
			if !strings.Contains(got, Redacted) || !LooksLikeKey(s) {
				t.Fatalf("Redact(%q) = %q, LooksLikeKey %v", s, got, LooksLikeKey(s))
			}
		}
	}
	if got := Redact(`a "` + keys[0] + `" b`); got != `a "`+Redacted+`" b` {
		t.Fatalf("surroundings changed: %q", got)
	}
}

func TestRedactLeavesOtherTextAlone(t *testing.T) {
	for _, s := range []string{
		"",
		`role "orders_admin" not found`,
		"scopes: orders:read,orders:write",
		"kid_3f2a9c01d4e5b6a7c8d9e0f1a2b3c4d5", // a key id
		"0000018c2f1e2d3c4b5aa1b2c3d4",         // an alert id
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c", // a hash
		"svc_prod_main",
		"a_b_short0123456789ABCDEFGHIJ", // tail shorter than any key's
		"UPPER_CASE_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		"f47ac10b-58cc-4372-a567-0e02b2c3d479",
	} {
		if got := Redact(s); got != s || LooksLikeKey(s) {
			t.Fatalf("Redact(%q) = %q, LooksLikeKey %v", s, got, LooksLikeKey(s))
		}
	}
}

func TestRedactDetailsCopiesOnlyWhenItRedacts(t *testing.T) {
	key := genKey(t, "ak", "prod", DefaultEntropyBits, 5)
	clean := map[string]string{"reason": "rotated by policy"}
	if got := RedactDetails(clean); reflect.ValueOf(got).Pointer() != reflect.ValueOf(clean).Pointer() {
		t.Fatalf("details without a key were copied: %v", got)
	}
	dirty := map[string]string{"reason": "pasted " + key, "note": "fine"}
	got := RedactDetails(dirty)
	if got["reason"] != "pasted "+Redacted || got["note"] != "fine" {
		t.Fatalf("RedactDetails = %v", got)
	}
	if dirty["reason"] != "pasted "+key {
		t.Fatalf("the caller's map was changed: %v", dirty)
	}
	if RedactDetails(nil) != nil {
		t.Fatal("nil details became non-nil")
	}
}
