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
	if len(s) < minTailLen || !hasKeyShaped(s) {
		return s // the common case: nothing to copy
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if !isWord(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isWord(s[j]) {
			j++
		}
		if keyShaped(s[i:j]) {
			b.WriteString(Redacted)
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// LooksLikeKey reports whether s contains a key-shaped word (see Redact).
// Names that end up in paths, storage keys and audit logs are refused
// when it does.
func LooksLikeKey(s string) bool {
	return len(s) >= minTailLen && hasKeyShaped(s)
}

func hasKeyShaped(s string) bool {
	for i := 0; i < len(s); {
		if !isWord(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isWord(s[j]) {
			j++
		}
		if keyShaped(s[i:j]) {
			return true
		}
		i = j
	}
	return false
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
