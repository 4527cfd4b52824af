package scopes

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// MaxLen is the maximum length of a single scope in bytes.
const MaxLen = 128

// Wildcard is the scope that matches every scope.
const Wildcard = "*"

// Validate reports whether s is a well-formed scope. The error names the
// scope (scopes are not secret) and says what is allowed.
func Validate(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("invalid scope %q: scopes must not be empty", s)
	}
	if len(s) > MaxLen {
		// Do not echo arbitrarily long input into errors and logs.
		return fmt.Errorf("invalid scope %q...: scopes must be at most %d characters", s[:32], MaxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '*' {
			// Only as the final, whole segment: "*" or "...:*".
			if i != len(s)-1 || (i > 0 && s[i-1] != ':') {
				return fmt.Errorf("invalid scope %q: '*' is only allowed as the last segment, as in \"orders:*\" or \"*\"", s)
			}
			continue
		}
		if !validChar(c) {
			return fmt.Errorf("invalid scope %q: scopes may contain only letters, digits, '_', '.', ':', '/' and '-', optionally ending in a \":*\" wildcard", s)
		}
	}
	return nil
}

// ValidateAll validates every scope in list and returns the first error.
func ValidateAll(list []string) error {
	for _, s := range list {
		if err := Validate(s); err != nil {
			return err
		}
	}
	return nil
}

func validChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '.', c == ':', c == '/', c == '-':
		return true
	}
	return false
}

// Matches reports whether pattern grants scope.
//
//   - "*" matches every scope.
//   - "p:*" matches any scope strictly below "p:", including other wildcards
//     such as "p:*" and "p:x:*", but not "p" itself and not "px:...".
//   - Anything else matches only an identical scope.
//
// Matching is purely textual; callers are expected to have validated both
// sides. Malformed patterns such as "ord*" only ever match themselves.
func Matches(pattern, scope string) bool {
	if pattern == Wildcard {
		return true
	}
	if stem, ok := strings.CutSuffix(pattern, ":*"); ok {
		// Keep the ':' in the prefix so "orders:*" does not match
		// "ordersx:read", and require at least one more byte so it does not
		// match the bare "orders:".
		prefix := stem + ":"
		return len(scope) > len(prefix) && strings.HasPrefix(scope, prefix)
	}
	return pattern == scope
}

// Covers reports whether some pattern in allowed matches scope. Since
// Matches is textual, a wildcard scope is only covered by an equal or broader
// wildcard: "orders:*" is covered by "orders:*" or "*", never by
// "orders:read".
func Covers(allowed []string, scope string) bool {
	for _, p := range allowed {
		if Matches(p, scope) {
			return true
		}
	}
	return false
}

// Outside returns the scopes in requested that allowed does not cover, in
// input order and without duplicates. It is used to refuse issuing a key
// with scopes beyond its role. The result is nil when everything is covered.
func Outside(requested, allowed []string) []string {
	var out []string
	for _, s := range requested {
		if !Covers(allowed, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Intersect computes a key's effective scopes given the scopes it was issued
// with and its role's current scopes.
//
// Each key scope k that the role still covers is kept as is. Otherwise, role
// scopes that k itself matches (role scopes narrower than k) are kept in its
// place. So narrowing a role takes effect on existing keys immediately,
// while widening a role never widens a key beyond what it was issued with.
//
// The result is deduplicated and sorted, and nil when empty.
func Intersect(keyScopes, roleScopes []string) []string {
	var out []string
	for _, k := range keyScopes {
		if Covers(roleScopes, k) {
			out = append(out, k)
			continue
		}
		for _, r := range roleScopes {
			if Matches(k, r) {
				out = append(out, r)
			}
		}
	}
	return sortedUnique(out)
}

// Widened returns the scopes in newScopes not covered by oldScopes, in input
// order and without duplicates: the grants a role change adds, used to raise
// alerts. It is nil when the change widens nothing.
func Widened(oldScopes, newScopes []string) []string {
	return Outside(newScopes, oldScopes)
}

// Normalize trims surrounding whitespace from each entry, drops empty
// entries, removes duplicates and sorts. It does not validate. The result is
// nil when empty.
func Normalize(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return sortedUnique(out)
}

// Join renders scopes as a single space-separated string, the format used by
// the "scope" member of RFC 7662 token introspection responses.
func Join(list []string) string {
	return strings.Join(list, " ")
}

// Split parses a list of scopes separated by whitespace and/or commas, so
// both "a b" (RFC 7662 style) and "a,b" (Vault comma-string style) work.
// Empty fields are dropped; the result is nil when there are none. Use
// Normalize to also deduplicate and sort.
func Split(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || unicode.IsSpace(r)
	})
	if len(f) == 0 {
		return nil
	}
	return f
}

// sortedUnique sorts list in place and removes duplicates, returning nil for
// an empty result.
func sortedUnique(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	slices.Sort(list)
	return slices.Compact(list)
}
