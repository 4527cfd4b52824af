package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// gitleaksRedacted is what gitleaks --redact puts in place of a secret (all
// of it, or the part it hides).
const gitleaksRedacted = "REDACTED"

// filterGitleaks writes the findings of the gitleaks JSON report at path
// that are worth acting on (see the package doc) to out, as a JSON array in
// the report's own form, or with keysOnly the distinct well-formed keys one
// per line, and counts to log. It returns how many it wrote.
func filterGitleaks(c checker, path, rulePrefix string, keysOnly bool, out, log io.Writer) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// Each finding is kept as read, so fields this command does not know
	// (gitleaks adds some now and then) pass through untouched.
	var findings []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &findings); err != nil {
		return 0, fmt.Errorf("%s is not a gitleaks JSON report: %w", path, err)
	}
	kept := []map[string]json.RawMessage{}
	var keys []string
	seen := map[string]bool{}
	var checked, dropped, unchecked int
	for i, f := range findings {
		var rule, secret string
		if err := json.Unmarshal(f["RuleID"], &rule); err != nil {
			return 0, fmt.Errorf("%s: finding %d has no RuleID", path, i)
		}
		if !strings.HasPrefix(rule, rulePrefix) {
			kept = append(kept, f)
			continue
		}
		if err := json.Unmarshal(f["Secret"], &secret); err != nil {
			return 0, fmt.Errorf("%s: finding %d has no Secret", path, i)
		}
		switch {
		case c.wellFormed(secret):
			checked++
			kept = append(kept, f)
			if !seen[secret] {
				seen[secret] = true
				keys = append(keys, secret)
			}
		case strings.Contains(secret, gitleaksRedacted):
			unchecked++
			kept = append(kept, f)
		default:
			dropped++
		}
	}
	fmt.Fprintf(log, "apikeys-keycheck: %d findings: %d well-formed keys, %d dropped (not a well-formed key), %d redacted by gitleaks (kept unchecked), %d of other rules (kept)\n",
		len(findings), checked, dropped, unchecked, len(kept)-checked-unchecked)
	if keysOnly {
		_, err := io.WriteString(out, strings.Join(append(keys, ""), "\n"))
		return len(keys), err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", " ")
	return len(kept), enc.Encode(kept)
}
