// Package vaulttest runs a real Vault server (the binary this repository
// builds in bin/vault) on a free loopback port, with the locally built
// plugin registered by SHA-256 and version, mounted as users mount it, and a
// file audit device enabled. Integration tests, the benchmark and the CI
// example all start Vault through it.
package vaulttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// PluginName is the name the plugin is registered under in the catalog.
const PluginName = "apikeys"

// PluginBinary is the plugin executable's file name.
const PluginBinary = "vault-plugin-secrets-apikeys"

// RootToken is the dev server's root token.
const RootToken = "root"

// NonHMACResponseKeys stay readable in the audit log; secrets (key, token)
// are HMAC'd by the audit device as usual.
var NonHMACResponseKeys = []string{"key_id", "client", "role", "version", "state", "active", "code"}

// VerifyResponseHeaders are the headers verify's GET and authorize forms
// set for a gateway; Vault drops a plugin's response headers unless the
// mount allows them by name (the README's tune lists the same).
var VerifyResponseHeaders = []string{
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After",
	"X-Apikeys-Client", "X-Apikeys-Key-Id", "X-Apikeys-Owner", "X-Apikeys-Scope", "X-Apikeys-Code",
}

// NonHMACRequestKeys stay readable in the audit log's request entries:
// none. Vault writes the request entry before the plugin sees the request,
// so whatever a caller sends in a listed field is logged as sent, however
// the plugin then validates it: a key pasted into "role" or "scopes" would
// be in the audit log in clear. No request field is safe for that, so all
// are HMAC'd; an auditor matches a known value with sys/audit-hash. The
// response fields above are the plugin's own answers (names it validated
// and stored, codes, states), never echoed input.
var NonHMACRequestKeys = []string{}

// Options configure Start.
type Options struct {
	// RepoRoot is the repository root; found from the working directory if empty.
	RepoRoot string
	// VaultBin overrides <root>/bin/vault (env VAULT_BIN also does).
	VaultBin string
	// Mount is the path the plugin is mounted at (default "apikeys").
	Mount string
	// NoAudit skips enabling the file audit device (benchmarks).
	NoAudit bool
	// LogLevel of the server (default "info").
	LogLevel string
	// Output, when set, receives the server's log as well as the log file.
	Output io.Writer
	// Raft runs a single-node Vault on integrated storage (Raft) instead of
	// a dev server's in-memory storage: Raft's 1 MiB entry limit applies,
	// and the data survives Restart. Port, Dir and ExamplePolicies are for
	// dev servers only.
	Raft bool
	// Port is the loopback port to listen on (the cluster listener takes
	// Port+1); 0 picks a free pair.
	Port int
	// Dir holds the server's files (config, plugins, logs); it is created
	// if missing and kept by Stop. Empty: a new temporary directory that
	// Stop removes.
	Dir string
	// ExamplePolicies loads bootstrap/policies/<name>.hcl as policy
	// apikeys-<name>, as make dev does.
	ExamplePolicies bool
	// Experiments are Vault experiments to enable on a dev server (e.g.
	// "events.alpha1", Vault 1.13's event bus).
	Experiments []string
}

// Server is a running Vault dev server with the plugin mounted.
type Server struct {
	Addr          string
	Token         string
	Client        *api.Client
	Dir           string
	LogPath       string
	AuditPath     string
	PluginDir     string
	PluginVersion string
	PluginSHA256  string
	Mount         string

	proc    *process
	tempDir bool
	// raft is the single-node cluster behind a Raft server (Options.Raft).
	raft *Cluster
}

// FindRepoRoot walks up from the working directory to the directory holding
// this module's go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/apikeys/vault-plugin-secrets-apikeys\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of vault-plugin-secrets-apikeys) not found above the working directory")
		}
		dir = parent
	}
}

// PluginVersion reads the VERSION file.
func PluginVersion(root string) (string, error) {
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(v)), nil
}

// BuildPlugin compiles the plugin from the working tree into dir with its
// version stamped in, and returns its SHA-256. Building here (rather than
// trusting a binary lying around) guarantees tests load the local code.
func BuildPlugin(root, dir, version string) (string, error) {
	out := filepath.Join(dir, PluginBinary)
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-X github.com/apikeys/vault-plugin-secrets-apikeys/backend.Version="+version,
		"-o", out, "./cmd/vault-plugin-secrets-apikeys")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building plugin: %v\n%s", err, msg)
	}
	return FileSHA256(out)
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// freePortPair finds a port p with p+1 also free: a dev server listens on p
// and its cluster listener on p+1.
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free pair of loopback ports")
}

// locate finds the repository root and the Vault binary: the given ones,
// else the root above the working directory and VAULT_BIN or <root>/bin/vault.
func locate(root, vaultBin string) (string, string, error) {
	if root == "" {
		r, err := FindRepoRoot()
		if err != nil {
			return "", "", err
		}
		root = r
	}
	if vaultBin == "" {
		vaultBin = os.Getenv("VAULT_BIN")
	}
	if vaultBin == "" {
		vaultBin = filepath.Join(root, "bin", "vault")
	}
	if _, err := os.Stat(vaultBin); err != nil {
		return "", "", fmt.Errorf("vault binary %s not found: run `make vault` first (%v)", vaultBin, err)
	}
	return root, vaultBin, nil
}

// Start builds the plugin, starts Vault and mounts the plugin.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Raft {
		return startRaft(ctx, opts)
	}
	root, vaultBin, err := locate(opts.RepoRoot, opts.VaultBin)
	if err != nil {
		return nil, err
	}
	version, err := PluginVersion(root)
	if err != nil {
		return nil, err
	}
	dir, temp := opts.Dir, opts.Dir == ""
	if temp {
		dir, err = os.MkdirTemp("", "apikeys-vault-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return nil, err
	}
	s := &Server{
		Dir:           dir,
		tempDir:       temp,
		Token:         RootToken,
		PluginDir:     filepath.Join(dir, "plugins"),
		PluginVersion: version,
		LogPath:       filepath.Join(dir, "vault.log"),
		AuditPath:     filepath.Join(dir, "audit.log"),
		Mount:         opts.Mount,
	}
	if s.Mount == "" {
		s.Mount = "apikeys"
	}
	if err := os.MkdirAll(s.PluginDir, 0o755); err != nil {
		return nil, err
	}
	if s.PluginSHA256, err = BuildPlugin(root, s.PluginDir, version); err != nil {
		return nil, err
	}
	if err := s.start(ctx, vaultBin, opts); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.setup(ctx, opts); err != nil {
		s.Stop()
		return nil, err
	}
	if opts.ExamplePolicies {
		if err := writeExamplePolicies(ctx, s.Client, root); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, vaultBin string, opts Options) error {
	cfgPath := filepath.Join(s.Dir, "config.hcl")
	cfg := fmt.Sprintf("plugin_directory = %q\nraw_storage_endpoint = true\ndisable_mlock = true\nui = false\n", s.PluginDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	var lastErr error
	attempts := 3
	if opts.Port != 0 {
		attempts = 1 // a busy fixed port stays busy
	}
	for attempt := 0; attempt < attempts; attempt++ {
		port := opts.Port
		if port == 0 {
			p, err := freePortPair()
			if err != nil {
				return err
			}
			port = p
		}
		s.Addr = fmt.Sprintf("http://127.0.0.1:%d", port)
		args := []string{"server", "-dev",
			"-dev-root-token-id=" + RootToken,
			fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port),
			"-config=" + cfgPath,
			"-log-level=" + level}
		for _, x := range opts.Experiments {
			args = append(args, "-experiment="+x)
		}
		proc, err := startProcess(vaultBin, args, s.Dir, s.LogPath, opts.Output)
		if err != nil {
			return err
		}
		s.proc = proc
		if lastErr = s.waitHealthy(ctx, 60*time.Second); lastErr == nil {
			return nil
		}
		s.kill()
	}
	return fmt.Errorf("vault did not start: %v (log: %s)", lastErr, s.LogPath)
}

func (s *Server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	client, err := newClient(s.Addr, s.Token)
	if err != nil {
		return err
	}
	s.Client = client
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.proc.done:
			return errors.New("vault exited during start-up")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if h, err := client.Sys().HealthWithContext(ctx); err == nil && h.Initialized && !h.Sealed {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // polling for readiness, not timing a test
	}
	return errors.New("timed out waiting for vault to become healthy")
}

func (s *Server) setup(ctx context.Context, opts Options) error {
	audit := s.AuditPath
	if opts.NoAudit {
		audit = ""
	}
	return setupPlugin(ctx, s.Client, s.PluginSHA256, s.PluginVersion, audit, s.Mount)
}

// MountAt mounts the registered plugin at path (see mountPlugin).
func (s *Server) MountAt(ctx context.Context, path string) error {
	return mountPlugin(ctx, s.Client, s.PluginVersion, path)
}

// MountUUID returns the UUID under which a mount's storage lives
// (sys/raw/logical/<uuid>/...).
func (s *Server) MountUUID(ctx context.Context, path string) (string, error) {
	mounts, err := s.Client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return "", err
	}
	m, ok := mounts[strings.TrimSuffix(path, "/")+"/"]
	if !ok {
		return "", fmt.Errorf("mount %s not found", path)
	}
	return m.UUID, nil
}

// Stop ends the server and removes its temporary directory unless
// KEEP_VAULT_DIR is set.
func (s *Server) Stop() {
	if s.raft != nil {
		s.raft.Stop()
		return
	}
	s.kill()
	if os.Getenv("KEEP_VAULT_DIR") == "" && s.tempDir && s.Dir != "" {
		_ = os.RemoveAll(s.Dir)
	}
}

func (s *Server) kill() {
	if s.proc != nil {
		s.proc.stop(10 * time.Second)
		s.proc = nil
	}
}
