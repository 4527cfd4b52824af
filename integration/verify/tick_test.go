package verify

import (
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// tickDeadline bounds the wait for Vault's periodic function (about once a
// minute per mount).
const tickDeadline = 150 * time.Second

// pluginPIDs lists the running processes of this server's plugin.
func pluginPIDs(t *testing.T) []int {
	t.Helper()
	pids, err := vaulttest.ProcessesOf(filepath.Join(vaulttest.Shared.PluginDir, vaulttest.PluginBinary))
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		t.Fatal("no plugin process running")
	}
	slices.Sort(pids)
	return pids
}

// waitForTick waits until a periodic tick ran on mount m: the governance
// tick writes its state (governance/state), which nothing else writes
// unless alerts are read.
func waitForTick(t *testing.T, m string) {
	t.Helper()
	path := vaulttest.RawPath(t, m, "governance/state")
	end := time.Now().Add(tickDeadline)
	for {
		s, err := client(t).Logical().Read(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if s != nil && s.Data["value"] != nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no periodic tick on %s within %v", m, tickDeadline)
		}
		time.Sleep(2 * time.Second)
	}
}

// The plugin used to crash on the first verify with a client_ip after a
// periodic tick had run with no verify before it (the tick's drain left
// the new-address detector half built): HTTP 500, and the multiplexed
// plugin process died with every mount's in-memory state. The same for
// every token exchange, which always passes the caller's address.
func TestVerifyAndTokenAfterFirstTick(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"audiences": "orders-api"})
	key := issue(t, m, "svc", "k", "r", nil)
	// The tick runs in the background while the package's other tests do.
	t.Parallel()
	waitForTick(t, m)
	before := pluginPIDs(t)

	if d := verify(t, client(t), m, key, map[string]interface{}{"client_ip": "10.1.2.3", "audience": "orders-api"}); d["active"] != true {
		t.Fatalf("POST verify with client_ip after a tick: %v", d)
	}
	status, d := verifyGet(t, vaulttest.Shared.Token, m, "X-Api-Key", key, url.Values{"client_ip": {"10.1.2.3"}, "audience": {"orders-api"}})
	if status != 200 || d["active"] != true {
		t.Fatalf("GET verify with client_ip after a tick: HTTP %d %v", status, d)
	}
	tok, err := client(t).Logical().Write(m+"/token", map[string]interface{}{"key": key, "audience": "orders-api"})
	if err != nil || tok == nil || tok.Data["token"] == nil {
		t.Fatalf("token exchange after a tick: %v %v", tok, err)
	}
	if after := pluginPIDs(t); !slices.Equal(before, after) {
		t.Fatalf("plugin processes changed from %v to %v: it restarted", before, after)
	}
}
