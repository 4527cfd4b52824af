package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// A Raft server (Options.Raft) is a one-node Cluster seen through the
// Server API, so tests written against a dev server run unchanged on
// integrated storage, where Vault refuses entries over 1 MiB, and can
// restart Vault on the same data.

func startRaft(ctx context.Context, opts Options) (*Server, error) {
	c, err := StartCluster(ctx, ClusterOptions{
		RepoRoot: opts.RepoRoot,
		VaultBin: opts.VaultBin,
		Nodes:    1,
		Mount:    opts.Mount,
		NoAudit:  opts.NoAudit,
		LogLevel: opts.LogLevel,
		Output:   opts.Output,
	})
	if err != nil {
		return nil, err
	}
	nd := c.Nodes[0]
	s := &Server{
		Addr:          nd.Addr,
		Token:         c.Token,
		Client:        c.Client(0),
		Dir:           c.Dir,
		LogPath:       nd.LogPath,
		AuditPath:     c.AuditPath,
		PluginDir:     nd.PluginDir,
		PluginVersion: c.PluginVersion,
		PluginSHA256:  c.PluginSHA256,
		Mount:         c.Mount,
		raft:          c,
	}
	return s, nil
}

// Restart stops Vault and starts it again on the same Raft data, unsealed
// and active, as an operator's restart (crash=false: SIGINT, Vault shuts
// down cleanly) or a crash (crash=true: SIGKILL to Vault and its plugins).
// Only a Raft server keeps its data, so only it can restart.
func (s *Server) Restart(ctx context.Context, crash bool) error {
	if s.raft == nil {
		return errors.New("only a Raft server (Options.Raft) keeps its data across a restart")
	}
	nd := s.raft.Nodes[0]
	if nd.proc != nil {
		grace := 10 * time.Second
		if crash {
			grace = 0
		}
		nd.proc.stop(grace)
		nd.proc = nil
	}
	return s.raft.Restart(ctx, 0)
}

// PluginPIDs lists the server's running plugin processes (one while any
// mount of the plugin is loaded: Vault multiplexes mounts in one process).
func (s *Server) PluginPIDs() ([]int, error) {
	return ProcessesOf(filepath.Join(s.PluginDir, PluginBinary))
}

// KillPlugin ends every plugin process with SIGKILL, as a crash of the
// plugin alone would; Vault starts it again on the next request to a mount.
func (s *Server) KillPlugin() ([]int, error) {
	pids, err := s.PluginPIDs()
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no plugin process running under %s", s.PluginDir)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("killing plugin process %d: %w", pid, err)
		}
	}
	return pids, nil
}
