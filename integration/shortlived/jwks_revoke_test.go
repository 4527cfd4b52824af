package shortlived

import (
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func jwksKIDs(t *testing.T, m string) []string {
	t.Helper()
	var out []string
	for _, k := range fetchJWKS(t, m).Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Any rotated-out signing key can be withdrawn (jwks/revoke), and
// revoke_previous=true withdraws every key but the fresh current one, not
// only the latest outgoing key; withdrawals are logged and survive a plugin
// reload.
func TestJWKSRevokeAnyKeyAndAllButCurrent(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"token_ttl": "1h"})
	write(t, m+"/jwks/rotate", nil)
	write(t, m+"/jwks/rotate", nil)
	write(t, m+"/jwks/rotate", nil)
	all := jwksKIDs(t, m) // current, then rotated out newest first
	if len(all) != 4 {
		t.Fatalf("jwks after three rotations = %v", all)
	}
	cur, oldest := all[0], all[3]

	_, err := client(t).Logical().Write(m+"/jwks/revoke", map[string]interface{}{"kid": cur})
	expectStatus(t, err, 400, "current signing key")
	_, err = client(t).Logical().Write(m+"/jwks/revoke", map[string]interface{}{"kid": "no-such-kid"})
	expectStatus(t, err, 400, "kid")
	if got := jwksKIDs(t, m); !sameSet(got, all) {
		t.Fatalf("a refused revoke changed jwks: %v", got)
	}

	// The first key rotated out, which revoke_previous never reached.
	write(t, m+"/jwks/revoke", map[string]interface{}{"kid": oldest})
	if got := jwksKIDs(t, m); !sameSet(got, all[:3]) {
		t.Fatalf("jwks after revoking %s = %v", oldest, got)
	}

	rot := write(t, m+"/jwks/rotate", map[string]interface{}{"revoke_previous": true}).Data
	fresh := rot["kid"].(string)
	if got := jwksKIDs(t, m); len(got) != 1 || got[0] != fresh {
		t.Fatalf("jwks after revoke_previous = %v, want only %s", got, fresh)
	}

	if _, err := client(t).Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{m}}); err != nil {
		t.Fatalf("reloading the plugin: %v", err)
	}
	waitFor(t, "the mount to answer after the reload", 30*time.Second, func() bool {
		_, err := client(t).Logical().Read(m + "/config")
		return err == nil
	})
	if got := jwksKIDs(t, m); len(got) != 1 || got[0] != fresh {
		t.Fatalf("jwks after a plugin reload = %v, want only %s", got, fresh)
	}

	var logged []string
	for _, ev := range logEvents(t, m, "signing_key.revoked") {
		logged = append(logged, details(ev)["kid"].(string))
	}
	if !sameSet(logged, all) {
		t.Fatalf("signing_key.revoked entries for %v, want %v", logged, all)
	}
}
