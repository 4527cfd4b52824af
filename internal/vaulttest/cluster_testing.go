package vaulttest

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// SharedCluster is the cluster of the running test package, set by
// RunClusterMain.
var SharedCluster *Cluster

// RunClusterMain starts one Vault cluster for a test package, runs its tests
// and stops it. Call it from TestMain. On failure the cluster's directory
// (every node's log, the audit log) is kept and its path printed.
func RunClusterMain(m *testing.M, opts ClusterOptions) {
	c, err := StartCluster(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting vault cluster:", err)
		os.Exit(1)
	}
	SharedCluster = c
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "vault cluster logs kept: %s\n", c.Dir)
		os.Setenv("KEEP_VAULT_DIR", "1")
	}
	c.Stop()
	os.Exit(code)
}
