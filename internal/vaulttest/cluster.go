package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// A Cluster is a multi-node Vault (integrated storage, Raft, with HA) on
// loopback, for tests of what SPEC §8 asks of the plugin on a cluster. Each
// node is a bin/vault process with its own data directory, ports and plugin
// directory (holding the plugin built from the working tree). Node 1 is
// initialised (one unseal key) and the others join it through retry_join
// once they are unsealed. The plugin is registered, audited and mounted
// through the active node exactly as Start does on a dev server.

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// RepoRoot is the repository root; found from the working directory if empty.
	RepoRoot string
	// VaultBin overrides <root>/bin/vault (env VAULT_BIN also does).
	VaultBin string
	// Nodes is the number of servers (default 3, the smallest cluster
	// that keeps a quorum with one node down).
	Nodes int
	// Mount is the path the plugin is mounted at (default "apikeys").
	Mount string
	// NoAudit skips enabling the file audit device.
	NoAudit bool
	// LogLevel of the servers (default "info").
	LogLevel string
	// Output, when set, receives every node's log as well as its log file.
	Output io.Writer
}

// Cluster is a running Raft HA cluster with the plugin mounted.
type Cluster struct {
	Nodes []*Node
	// Token is the root token made at initialisation.
	Token string
	// UnsealKey is the single unseal key share (threshold 1).
	UnsealKey     string
	Dir           string
	AuditPath     string
	PluginVersion string
	PluginSHA256  string
	Mount         string

	vaultBin string
	logLevel string
	output   io.Writer
	mounted  bool
}

// Node is one server of a Cluster.
type Node struct {
	// Index is the node's position in Cluster.Nodes; ID its Raft node_id.
	Index       int
	ID          string
	Addr        string // API address, http://127.0.0.1:<port>
	ClusterAddr string // cluster (Raft and request forwarding) address
	Dir         string
	DataDir     string
	PluginDir   string
	ConfigPath  string
	LogPath     string

	proc *process
}

// Running reports whether the node's process is up (not killed).
func (n *Node) Running() bool { return n.proc != nil && !n.proc.exited() }

// StartCluster builds the plugin, starts the nodes, forms the cluster and
// mounts the plugin. On error everything started is stopped.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	root, vaultBin, err := locate(opts.RepoRoot, opts.VaultBin)
	if err != nil {
		return nil, err
	}
	version, err := PluginVersion(root)
	if err != nil {
		return nil, err
	}
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	dir, err := os.MkdirTemp("", "apikeys-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:           dir,
		AuditPath:     filepath.Join(dir, "audit.log"),
		PluginVersion: version,
		Mount:         opts.Mount,
		vaultBin:      vaultBin,
		logLevel:      opts.LogLevel,
		output:        opts.Output,
	}
	if c.Mount == "" {
		c.Mount = "apikeys"
	}
	if c.logLevel == "" {
		c.logLevel = "info"
	}
	if err := c.prepare(root, n); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.form(ctx); err != nil {
		c.abort()
		return nil, fmt.Errorf("forming the cluster: %w (logs kept in %s)", err, c.Dir)
	}
	audit := c.AuditPath
	if opts.NoAudit {
		audit = ""
	}
	active, err := c.WaitActive(ctx)
	if err == nil {
		err = setupPlugin(ctx, c.Client(active), c.PluginSHA256, c.PluginVersion, audit, c.Mount)
	}
	if err == nil {
		c.mounted = true
		_, err = c.WaitActive(ctx)
	}
	if err != nil {
		c.abort()
		return nil, fmt.Errorf("setting up the plugin on the cluster: %w (logs kept in %s)", err, c.Dir)
	}
	return c, nil
}

// prepare lays out each node's directories, ports, plugin binary and
// configuration file.
func (c *Cluster) prepare(root string, n int) error {
	used := map[int]bool{}
	for i := 0; i < n; i++ {
		port, err := distinctPortPair(used)
		if err != nil {
			return err
		}
		nd := &Node{
			Index:       i,
			ID:          fmt.Sprintf("node%d", i+1),
			Addr:        fmt.Sprintf("http://127.0.0.1:%d", port),
			ClusterAddr: fmt.Sprintf("https://127.0.0.1:%d", port+1),
			Dir:         filepath.Join(c.Dir, fmt.Sprintf("node%d", i+1)),
		}
		nd.DataDir = filepath.Join(nd.Dir, "data")
		nd.PluginDir = filepath.Join(nd.Dir, "plugins")
		nd.ConfigPath = filepath.Join(nd.Dir, "config.hcl")
		nd.LogPath = filepath.Join(nd.Dir, "vault.log")
		if err := os.MkdirAll(nd.DataDir, 0o700); err != nil {
			return err
		}
		if err := os.MkdirAll(nd.PluginDir, 0o755); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, nd)
	}
	// One build, copied to every node: the catalog entry (SHA-256) is
	// cluster-wide, so every node must hold the same binary.
	sum, err := BuildPlugin(root, c.Nodes[0].PluginDir, c.PluginVersion)
	if err != nil {
		return err
	}
	c.PluginSHA256 = sum
	for _, nd := range c.Nodes {
		if nd.Index > 0 {
			if err := copyExecutable(filepath.Join(c.Nodes[0].PluginDir, PluginBinary), filepath.Join(nd.PluginDir, PluginBinary)); err != nil {
				return err
			}
		}
		if err := os.WriteFile(nd.ConfigPath, []byte(c.nodeConfig(nd)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// nodeConfig is a node's server configuration. Nodes other than the first
// join the first through retry_join as soon as they are unsealed.
// performance_multiplier 2 (Vault's default is 5) shortens Raft's timeouts
// to a 2 s heartbeat and election timeout and a 1 s leader lease: a lost
// leader is replaced within seconds, with margin left for a busy machine.
// Autopilot reconciles every second instead of every 10 s, so joined nodes
// become voters (which step-down needs) soon after they are stable.
func (c *Cluster) nodeConfig(nd *Node) string {
	join := ""
	if nd.Index > 0 {
		join = fmt.Sprintf("\n  retry_join {\n    leader_api_addr = %q\n  }", c.Nodes[0].Addr)
	}
	listen := strings.TrimPrefix(nd.Addr, "http://")
	clusterListen := strings.TrimPrefix(nd.ClusterAddr, "https://")
	return fmt.Sprintf(`storage "raft" {
  path                         = %q
  node_id                      = %q
  performance_multiplier       = 2
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "500ms"%s
}

listener "tcp" {
  address         = %q
  cluster_address = %q
  tls_disable     = true
}

api_addr         = %q
cluster_addr     = %q
disable_mlock    = true
raw_storage_endpoint = true
plugin_directory = %q
ui               = false
log_level        = %q
`, nd.DataDir, nd.ID, join, listen, clusterListen, nd.Addr, nd.ClusterAddr, nd.PluginDir, c.logLevel)
}

// form starts every node, initialises the first, unseals all and waits
// until every node is a Raft voter.
func (c *Cluster) form(ctx context.Context) error {
	for _, nd := range c.Nodes {
		if err := c.startNode(nd); err != nil {
			return err
		}
	}
	for _, nd := range c.Nodes {
		if err := c.waitListening(ctx, nd); err != nil {
			return err
		}
	}
	first := c.clientFor(c.Nodes[0], "")
	init, err := first.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return fmt.Errorf("initialising %s: %w", c.Nodes[0].ID, err)
	}
	c.Token, c.UnsealKey = init.RootToken, init.Keys[0]
	if err := c.unseal(ctx, c.Nodes[0]); err != nil {
		return err
	}
	if err := c.waitNode(ctx, c.Nodes[0], "active", func(h *api.HealthResponse) bool { return !h.Sealed && !h.Standby }); err != nil {
		return err
	}
	// Autopilot promotes a joined node from non-voter to voter once it has
	// been healthy for server_stabilization_time (10 s by default); a
	// shorter time forms the cluster sooner. Step-down needs voters.
	if _, err := c.Client(0).Logical().WriteWithContext(ctx, "sys/storage/raft/autopilot/configuration",
		map[string]interface{}{"server_stabilization_time": "1s"}); err != nil {
		return fmt.Errorf("tuning autopilot: %w", err)
	}
	for _, nd := range c.Nodes[1:] {
		if err := c.unseal(ctx, nd); err != nil {
			return err
		}
	}
	return c.waitVoters(ctx)
}

func (c *Cluster) startNode(nd *Node) error {
	proc, err := startProcess(c.vaultBin, []string{"server", "-config=" + nd.ConfigPath}, nd.Dir, nd.LogPath, c.output)
	if err != nil {
		return fmt.Errorf("starting %s: %w", nd.ID, err)
	}
	nd.proc = proc
	return nil
}

// waitListening waits until a node answers sys/health at all.
func (c *Cluster) waitListening(ctx context.Context, nd *Node) error {
	return c.waitNode(ctx, nd, "listening", func(*api.HealthResponse) bool { return true })
}

// unseal submits the unseal key once it can be taken, then waits until the
// node is unsealed. A node that has not joined yet answers "not
// initialized" until retry_join has fetched the leader's challenge; once it
// has the key it finishes joining and unseals by itself. The key is never
// offered twice: a second unseal racing the join's own makes Vault 1.13
// start its HA loop twice, and the active node then ignores step-down.
func (c *Cluster) unseal(ctx context.Context, nd *Node) error {
	cl := c.clientFor(nd, "")
	deadline := time.Now().Add(startTimeout)
	for {
		if !nd.Running() {
			return fmt.Errorf("%s exited while unsealing (log: %s)", nd.ID, nd.LogPath)
		}
		_, err := cl.Sys().UnsealWithContext(ctx, c.UnsealKey)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not take the unseal key within %v: %v (log: %s)", nd.ID, startTimeout, err, nd.LogPath)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
	return c.waitNode(ctx, nd, "unsealed", func(h *api.HealthResponse) bool { return h.Initialized && !h.Sealed })
}

// waitVoters waits until the Raft configuration lists every node as a voter.
func (c *Cluster) waitVoters(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	var last string
	for time.Now().Before(deadline) {
		ids, err := c.RaftVoters(ctx)
		if err == nil && len(ids) == len(c.Nodes) {
			return nil
		}
		last = fmt.Sprintf("voters %v, err %v", ids, err)
		if err := pause(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("cluster did not form within %v: %s", startTimeout, last)
}

// RaftVoters lists the node ids that are voters in the Raft configuration.
func (c *Cluster) RaftVoters(ctx context.Context) ([]string, error) {
	var lastErr error
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		s, err := c.clientFor(nd, c.Token).Logical().ReadWithContext(ctx, "sys/storage/raft/configuration")
		if err != nil || s == nil {
			lastErr = err
			continue
		}
		conf, _ := s.Data["config"].(map[string]interface{})
		servers, _ := conf["servers"].([]interface{})
		var ids []string
		for _, raw := range servers {
			srv, _ := raw.(map[string]interface{})
			if srv["voter"] == true {
				ids = append(ids, fmt.Sprint(srv["node_id"]))
			}
		}
		return ids, nil
	}
	return nil, fmt.Errorf("no node answered sys/storage/raft/configuration: %v", lastErr)
}

// MountAt mounts the registered plugin at path through the active node, with
// the same version pin and tuning as the cluster's own mount.
func (c *Cluster) MountAt(ctx context.Context, path string) error {
	active, err := c.WaitActive(ctx)
	if err != nil {
		return err
	}
	return mountPlugin(ctx, c.Client(active), c.PluginVersion, path)
}

// Client returns a new API client for node i with the root token. It does
// not retry, so a test sees what that node answered.
func (c *Cluster) Client(i int) *api.Client { return c.clientFor(c.Nodes[i], c.Token) }

func (c *Cluster) clientFor(nd *Node, token string) *api.Client {
	cl, err := newClient(nd.Addr, token)
	if err != nil {
		panic(err) // only a malformed address fails, and addresses are ours
	}
	return cl
}

// Stop ends every node and removes the cluster's directory unless
// KEEP_VAULT_DIR is set.
func (c *Cluster) Stop() {
	c.abort()
	if os.Getenv("KEEP_VAULT_DIR") == "" && c.Dir != "" {
		_ = os.RemoveAll(c.Dir)
	}
}

// abort ends every node and keeps the directory, for a start that failed.
func (c *Cluster) abort() {
	for _, nd := range c.Nodes {
		if nd.proc != nil {
			nd.proc.stop(10 * time.Second)
			nd.proc = nil
		}
	}
}

// startTimeout bounds each step of forming the cluster.
const startTimeout = 90 * time.Second

// pollInterval is how often the helpers poll for a state (not a test timing).
const pollInterval = 200 * time.Millisecond

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pollInterval):
		return nil
	}
}

// distinctPortPair is freePortPair, avoiding ports already handed out.
func distinctPortPair(used map[int]bool) (int, error) {
	for i := 0; i < 20; i++ {
		p, err := freePortPair()
		if err != nil {
			return 0, err
		}
		if !used[p] && !used[p+1] && !used[p-1] {
			used[p], used[p+1] = true, true
			return p, nil
		}
	}
	return 0, errors.New("no distinct pair of free loopback ports")
}

func copyExecutable(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}
