// Package ha tests the plugin on a three-node Vault cluster with integrated
// storage (Raft) and HA, as SPEC §8 asks: correct on a multi-node cluster,
// background work only where Vault allows writes, no stale cached state when
// another node changed storage. It covers:
//   - requests sent to a standby (Vault OSS forwards them to the active node),
//     including the GET form of verify with its X-Api-Key header;
//   - failover by step-down: keys, revocations and the hash-chained lifecycle
//     log survive, and the new leader continues the same chain;
//   - a node that becomes active again serves the revocations, client locks
//     and role changes made on another node meanwhile, not what it cached;
//   - a crashed active node (SIGKILL): a standby takes over, and the node
//     rejoins after a restart;
//   - scheduled rotation after failover: done by the new leader, once per
//     scheduled time, with plugin processes only on the active node.
//
// The cluster (internal/vaulttest, StartCluster) runs bin/vault processes on
// loopback with the plugin built from the working tree, registered by
// SHA-256 and version, audited and mounted as on a dev server.
package ha

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunClusterMain(m, vaulttest.ClusterOptions{}) }
