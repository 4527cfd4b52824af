package backend

import (
	"sort"
)

// Vault Agent contract (SPEC §4). Agent (consul-template) re-reads a secret
// without a lease after its integer "ttl" when "rotation_period" is present.
// It also treats any response whose data.metadata is a JSON object without
// a "deletion_time" string as a deleted KV v2 secret and refuses to render
// it, so a key read returns its metadata as a sorted list of "key=value"
// pairs (the same form the metadata field accepts on write).

// metadataPairs renders metadata as sorted "key=value" strings.
func metadataPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
