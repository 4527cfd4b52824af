package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// HA helpers of a Cluster: which node is active, step-down, crash and
// restart. In Vault OSS only the active node runs mounts; standbys forward
// every request to it, and a node that steps down tears its mounts (and
// their plugin processes) down.

// failoverTimeout bounds waiting for a cluster to settle after a change of
// leader. A node that stepped down waits 10 s before it may take the lead
// again, so handing the lead straight back takes about that long.
const failoverTimeout = 60 * time.Second

// Health returns node i's sys/health answer.
func (c *Cluster) Health(ctx context.Context, i int) (*api.HealthResponse, error) {
	return c.clientFor(c.Nodes[i], "").Sys().HealthWithContext(ctx)
}

// Active returns the node that currently reports itself active, without
// waiting; -1 when none does.
func (c *Cluster) Active(ctx context.Context) int {
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		if h, err := c.Health(ctx, nd.Index); err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nd.Index
		}
	}
	return -1
}

// WaitActive waits until the cluster has settled and returns the active
// node: exactly one running node is active, every other running node is an
// unsealed standby, and every running node serves requests (the plugin's
// mount once it exists) — the active itself, the standbys by forwarding.
func (c *Cluster) WaitActive(ctx context.Context) (int, error) {
	deadline := time.Now().Add(failoverTimeout)
	for {
		if err := c.crashed(); err != nil {
			return -1, err
		}
		i, err := c.settled(ctx)
		if err == nil {
			return i, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("cluster did not settle within %v: %v", failoverTimeout, err)
		}
		if err := pause(ctx); err != nil {
			return -1, err
		}
	}
}

// crashed reports a node that exited although nobody killed it: the
// cluster will not settle as the test expects, so waiting is pointless.
func (c *Cluster) crashed() error {
	for _, nd := range c.Nodes {
		if nd.proc != nil && nd.proc.exited() {
			return fmt.Errorf("%s exited unexpectedly (log: %s)", nd.ID, nd.LogPath)
		}
	}
	return nil
}

// settled checks once what WaitActive waits for (killed nodes aside).
func (c *Cluster) settled(ctx context.Context) (int, error) {
	active := -1
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		h, err := c.Health(ctx, nd.Index)
		switch {
		case err != nil:
			return -1, fmt.Errorf("%s: %v", nd.ID, err)
		case !h.Initialized || h.Sealed:
			return -1, fmt.Errorf("%s is sealed", nd.ID)
		case h.Standby:
		case active >= 0:
			return -1, fmt.Errorf("both %s and %s report active", c.Nodes[active].ID, nd.ID)
		default:
			active = nd.Index
		}
	}
	if active < 0 {
		return -1, errors.New("no active node")
	}
	probe := "auth/token/lookup-self"
	if c.mounted {
		probe = c.Mount + "/info"
	}
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		if _, err := c.clientFor(nd, c.Token).Logical().ReadWithContext(ctx, probe); err != nil {
			return -1, fmt.Errorf("%s does not serve %s yet: %v", nd.ID, probe, err)
		}
	}
	// The lead may have moved while the nodes were probed.
	if h, err := c.Health(ctx, active); err != nil || h.Standby {
		return -1, fmt.Errorf("%s lost the lead while settling", c.Nodes[active].ID)
	}
	return active, nil
}

// StepDown makes active node i give up the lead (sys/step-down) and returns
// the node that took over once the cluster has settled. Vault's Raft
// backend hands the lead to the most up-to-date follower.
func (c *Cluster) StepDown(ctx context.Context, i int) (int, error) {
	// sys/step-down sent to a standby would be forwarded to the active
	// node and step that one down instead.
	if h, err := c.Health(ctx, i); err != nil || h.Standby || h.Sealed {
		return -1, fmt.Errorf("%s is not active (health %+v, err %v)", c.Nodes[i].ID, h, err)
	}
	if err := c.Client(i).Sys().StepDownWithContext(ctx); err != nil {
		return -1, fmt.Errorf("stepping down %s: %w", c.Nodes[i].ID, err)
	}
	deadline := time.Now().Add(failoverTimeout)
	for {
		if err := c.crashed(); err != nil {
			return -1, err
		}
		j, err := c.settled(ctx)
		if err == nil && j != i {
			return j, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no other node took over from %s within %v (last: active %d, %v)", c.Nodes[i].ID, failoverTimeout, j, err)
		}
		if err := pause(ctx); err != nil {
			return -1, err
		}
	}
}

// MakeActive makes node want the active node. Raft hands the lead to the
// most up-to-date follower, which need not be want, so the other followers
// are stopped while the active node steps down (want is then the only
// candidate) and restarted afterwards. Stopping them must keep a quorum, so
// this needs a cluster of three nodes (one other follower).
func (c *Cluster) MakeActive(ctx context.Context, want int) error {
	a, err := c.WaitActive(ctx)
	if err != nil || a == want {
		return err
	}
	var others []int
	for _, nd := range c.Nodes {
		if nd.Index != want && nd.Index != a && nd.Running() {
			others = append(others, nd.Index)
		}
	}
	if 2*len(others) >= len(c.Nodes) {
		return fmt.Errorf("stopping %d of %d nodes would lose the quorum", len(others), len(c.Nodes))
	}
	for _, i := range others {
		c.Kill(i)
	}
	j, err := c.StepDown(ctx, a)
	for _, i := range others {
		if rerr := c.Restart(ctx, i); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	if j != want {
		return fmt.Errorf("%s took over from %s, not %s", c.Nodes[j].ID, c.Nodes[a].ID, c.Nodes[want].ID)
	}
	return nil
}

// Kill ends node i at once (SIGKILL to its process group, plugin processes
// included), as a crash or power loss would.
func (c *Cluster) Kill(i int) {
	nd := c.Nodes[i]
	if nd.proc != nil {
		nd.proc.stop(0)
		nd.proc = nil
	}
}

// Restart starts a killed node again from its data directory, unseals it
// and waits until the cluster has settled with it.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	nd := c.Nodes[i]
	if nd.Running() {
		return fmt.Errorf("%s is running", nd.ID)
	}
	if err := c.startNode(nd); err != nil {
		return err
	}
	if err := c.waitListening(ctx, nd); err != nil {
		return err
	}
	if err := c.unseal(ctx, nd); err != nil {
		return err
	}
	_, err := c.WaitActive(ctx)
	return err
}

// waitNode polls node nd's health until cond holds.
func (c *Cluster) waitNode(ctx context.Context, nd *Node, what string, cond func(*api.HealthResponse) bool) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if !nd.Running() {
			return fmt.Errorf("%s exited (log: %s)", nd.ID, nd.LogPath)
		}
		h, err := c.Health(ctx, nd.Index)
		if err == nil && cond(h) {
			return nil
		}
		lastErr = err
		if err := pause(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not %s within %v: %v (log: %s)", nd.ID, what, startTimeout, lastErr, nd.LogPath)
}

// PluginPIDs lists the running plugin processes of node i (by executable
// path under its own plugin directory). A node runs one only while it has
// the mount loaded, that is while it is active.
func (c *Cluster) PluginPIDs(i int) ([]int, error) {
	return ProcessesOf(filepath.Join(c.Nodes[i].PluginDir, PluginBinary))
}

// ProcessesOf lists the running processes of the executable at path (from
// /proc), so tests can see plugin processes come and go.
func ProcessesOf(path string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.TrimSuffix(exe, " (deleted)") == path {
			out = append(out, pid)
		}
	}
	return out, nil
}
