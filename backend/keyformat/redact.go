package keyformat

import "strings"

// Redacted stands in for key-shaped text removed by Redact.
const Redacted = "[redacted: looks like an API key]"

// minTailLen is the shortest random part plus checksum a key can have.
var minTailLen = RandomLength(MinEntropyBits) + ChecksumLen

// Redact returns s with every key-shaped word replaced by Redacted, for
// any text that repeats what a caller sent (errors, warnings, alert
// details, log lines): a key pasted into the wrong field must not be
// echoed to whoever reads those.
//
// A word is a maximal run of letters, digits and '_' (a key's alphabet),
// and it is key-shaped when it contains the generic shape of a key of any
// mount: two short lowercase parts (prefix, env) followed by a part of at
// least the shortest random+checksum length, whatever the prefix and
// environment, and whatever the checksum says. A key with a mistyped
// character fails its checksum but still carries nearly all its entropy,
// so the checksum is not required; a word merely resembling a key is
// redacted too, which costs only an error message's detail.
func Redact(s string) string {
	if !LooksLikeKey(s) {
		return s // the common case: nothing to copy
	}
	var b strings.Builder
	b.Grow(len(s))
	eachWord(s, func(sep, word string) bool {
		b.WriteString(sep)
		if keyShaped(word) {
			b.WriteString(Redacted)
		} else {
			b.WriteString(word)
		}
		return true
	})
	return b.String()
}

// RedactDetails returns details with key-shaped text redacted from its
// values (see Redact): details itself when there is none, else a copy, so
// the caller's map is never changed.
func RedactDetails(details map[string]string) map[string]string {
	var out map[string]string
	for k, v := range details {
		if r := Redact(v); r != v {
			if out == nil {
				out = make(map[string]string, len(details))
				for k2, v2 := range details {
					out[k2] = v2
				}
			}
			out[k] = r
		}
	}
	if out == nil {
		return details
	}
	return out
}

// LooksLikeKey reports whether s contains a key-shaped word (see Redact).
// Names that end up in paths, storage keys and audit logs are refused
// when it does.
func LooksLikeKey(s string) bool {
	if len(s) < minTailLen {
		return false
	}
	found := false
	eachWord(s, func(_, word string) bool {
		found = keyShaped(word)
		return !found
	})
	return found
}

// eachWord calls fn for every word of s (see Redact) with the non-word
// text before it (the last call may have an empty word, for text after the
// last word), until fn returns false.
func eachWord(s string, fn func(sep, word string) bool) {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && !isWord(s[j]) {
			j++
		}
		k := j
		for k < len(s) && isWord(s[k]) {
			k++
		}
		if !fn(s[i:j], s[j:k]) {
			return
		}
		i = k
	}
}

// keyShaped reports whether the word w holds prefix_env_tail: an env of
// 1-16 lowercase letters or digits, after a part ending in one (the
// prefix, possibly glued to text before it), and a tail of at least
// minTailLen letters and digits (possibly followed by more text).
func keyShaped(w string) bool {
	if len(w) < minTailLen+4 {
		return false
	}
	parts := strings.Split(w, "_")
	for i := 2; i < len(parts); i++ {
		pre := parts[i-2]
		if len(parts[i]) >= minTailLen && shortLower(parts[i-1]) &&
			pre != "" && (isLower(pre[len(pre)-1]) || isDigit(pre[len(pre)-1])) {
			return true
		}
	}
	return false
}

func shortLower(p string) bool {
	if len(p) == 0 || len(p) > maxPartLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isLower(p[i]) && !isDigit(p[i]) {
			return false
		}
	}
	return true
}

func isWord(c byte) bool { return isBase62(c) || c == '_' }
