package vaulttest

import (
	"context"
	"os"
	"strings"
	"testing"
)

// StartRaftForTest starts a single-node Vault on Raft storage for one test
// (the soak and fuzz gates): Raft refuses entries over 1 MiB, so unbounded
// input shows, and its data survives a restart. Debug logging puts the
// plugin's stderr, where a panic would be written, into the server log.
// The server stops with the test, keeping its directory (logs, audit log)
// when the test failed.
func StartRaftForTest(t *testing.T) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{Raft: true, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vault directory kept: %s", s.Dir)
			os.Setenv("KEEP_VAULT_DIR", "1")
		}
		s.Stop()
	})
	return s
}

// PanicLines returns the lines of the server log at path that mention a
// panic (the plugin's stderr ends up in Vault's log).
func PanicLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(strings.ToLower(l), "panic") {
			out = append(out, l)
		}
	}
	return out
}
