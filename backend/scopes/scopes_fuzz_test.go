package scopes

import (
	"slices"
	"strings"
	"testing"
)

// FuzzMatches checks the matching rules on arbitrary strings: "*" grants
// everything, every string grants itself, a pattern that is not a wildcard
// grants only itself, a ":*" pattern grants exactly what lies strictly below
// its stem, and matching is transitive for valid scopes (a wildcard that
// grants a narrower wildcard grants everything that one grants), so a chain
// of grants never ends up wider than its first link.
func FuzzMatches(f *testing.F) {
	f.Add("orders:*", "orders:read", "orders:read")
	f.Add("*", "orders:*", "orders:x:*")
	f.Add("orders:*", "orders:x:*", "orders:x:y")
	f.Add("orders:*", "ordersx:read", "orders")
	f.Add("orders:*", "orders:", "orders:*")
	f.Add(":*", "::", ":")
	f.Add("ord*", "ord*", "order")
	f.Add("a:*", "a:b:*", "a:c")
	f.Fuzz(func(t *testing.T, p, s, u string) {
		if !Matches(Wildcard, s) {
			t.Fatalf("%q does not match %q", Wildcard, s)
		}
		if !Matches(s, s) {
			t.Fatalf("%q does not match itself", s)
		}
		m := Matches(p, s)
		if stem, ok := strings.CutSuffix(p, ":*"); ok && p != Wildcard {
			want := strings.HasPrefix(s, stem+":") && len(s) > len(stem)+1
			if m != want {
				t.Fatalf("Matches(%q, %q) = %v, want %v (below %q:)", p, s, m, want, stem)
			}
		} else if p != Wildcard && m != (p == s) {
			t.Fatalf("Matches(%q, %q) = %v for a non-wildcard pattern", p, s, m)
		}
		if Validate(p) == nil && Validate(s) == nil && Validate(u) == nil {
			if Matches(p, s) && Matches(s, u) && !Matches(p, u) {
				t.Fatalf("not transitive: %q grants %q, %q grants %q, but %q does not grant %q", p, s, s, u, p, u)
			}
		}
		if Covers([]string{p}, s) != m || Covers(nil, s) {
			t.Fatalf("Covers disagrees with Matches for %q, %q", p, s)
		}
	})
}

// FuzzScopeLists takes lists of scopes (space/comma separated, as users
// write them) and checks the list operations against Matches: what Outside
// leaves out is exactly what is not covered; Intersect never yields a scope
// the key was not granted nor one the role does not grant, yields sorted
// unique scopes, and keeps every key scope the role still covers; Normalize
// is idempotent; Split inverts Join for valid scopes.
func FuzzScopeLists(f *testing.F) {
	f.Add("orders:read orders:write", "orders:*")
	f.Add("orders:*", "orders:read,billing:*")
	f.Add("*", "a:b:* a:c")
	f.Add("a:b:*,a:b:*", "a:* a:b:c")
	f.Add("x", "")
	f.Add(" a ,, b\t", "*")
	f.Fuzz(func(t *testing.T, keyList, roleList string) {
		key, role := Split(keyList), Split(roleList)
		for _, l := range [][]string{key, role} {
			for _, s := range l {
				if s == "" || strings.ContainsAny(s, ", \t\n") {
					t.Fatalf("Split(%q) yielded %q", keyList+"|"+roleList, s)
				}
			}
		}
		out := Outside(key, role)
		for _, s := range key {
			if Covers(role, s) == slices.Contains(out, s) {
				t.Fatalf("Outside(%q, %q) = %q disagrees on %q", key, role, out, s)
			}
		}
		eff := Intersect(key, role)
		if !slices.IsSorted(eff) || len(slices.Compact(slices.Clone(eff))) != len(eff) {
			t.Fatalf("Intersect(%q, %q) = %q is not sorted and unique", key, role, eff)
		}
		for _, s := range eff {
			if !Covers(role, s) {
				t.Fatalf("Intersect(%q, %q) = %q grants %q beyond the role", key, role, eff, s)
			}
			if !Covers(key, s) {
				t.Fatalf("Intersect(%q, %q) = %q grants %q beyond the key", key, role, eff, s)
			}
		}
		for _, s := range key {
			if Covers(role, s) && !slices.Contains(eff, s) {
				t.Fatalf("Intersect(%q, %q) = %q drops %q, which the role covers", key, role, eff, s)
			}
		}
		n := Normalize(key)
		if !slices.Equal(Normalize(n), n) {
			t.Fatalf("Normalize is not idempotent on %q", key)
		}
		if ValidateAll(key) == nil && len(key) > 0 && !slices.Equal(Split(Join(key)), key) {
			t.Fatalf("Split(Join(%q)) = %q", key, Split(Join(key)))
		}
	})
}

// FuzzValidate checks that Validate accepts exactly the documented shape
// and that its error, which names the scope, never repeats more than a
// bounded prefix of an overlong input.
func FuzzValidate(f *testing.F) {
	f.Add("orders:read")
	f.Add("orders:*")
	f.Add("*")
	f.Add("ord*")
	f.Add("orders:réad")
	f.Add(strings.Repeat("a", MaxLen+1))
	f.Add(strings.Repeat("é", MaxLen))
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		body := strings.TrimSuffix(s, "*")
		want := s != "" && len(s) <= MaxLen &&
			(body == s || body == "" || strings.HasSuffix(body, ":")) &&
			strings.IndexFunc(body, func(r rune) bool { return r >= 128 || !validChar(byte(r)) }) < 0
		if (err == nil) != want {
			t.Fatalf("Validate(%q) = %v, want valid=%v", s, err, want)
		}
		if err != nil && len(s) > MaxLen && strings.Contains(err.Error(), s[:MaxLen]) {
			t.Fatalf("Validate repeats an overlong input in full: %v", err)
		}
	})
}
