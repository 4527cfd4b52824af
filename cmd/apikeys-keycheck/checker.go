package main

import (
	"fmt"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// checker decides whether one candidate is a well-formed key.
type checker struct {
	prefixes map[string]bool // nil: any prefix
}

func newChecker(list string) (checker, error) {
	var c checker
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if err := keyformat.ValidPrefix(p); err != nil {
			return c, fmt.Errorf("-prefix: %w", err)
		}
		if c.prefixes == nil {
			c.prefixes = map[string]bool{}
		}
		c.prefixes[p] = true
	}
	return c, nil
}

// wellFormed reports whether s is a key with a matching checksum (and one of
// the wanted prefixes). It says nothing about whether a mount issued it.
func (c checker) wellFormed(s string) bool {
	p, err := keyformat.Parse(s)
	if err != nil {
		return false
	}
	return c.prefixes == nil || c.prefixes[p.Prefix]
}
