package vaulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/hashicorp/vault/api"
)

// Upgrades as operators run them: the plugin catalog holds several
// versions of the one plugin name (each its own executable, SHA-256 and
// version), a mount is pinned to one, and `vault secrets tune
// -plugin-version` plus `vault plugin reload -mounts` moves it to another
// on the same storage. The upgrade test builds the previous release from
// the repository's own history and mounts it next to the current build.

// BuildRelease compiles the plugin as it was at commit (a revision of the
// repository at root, taken with git archive, so no worktree is left
// behind) with version stamped in, into dir as binary, and returns its
// SHA-256. The history must hold the commit (a full clone, not a shallow one).
func BuildRelease(ctx context.Context, root, commit, version, dir, binary string) (string, error) {
	src, err := os.MkdirTemp("", "apikeys-release-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if msg, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("extracting %s from the repository history (is it a full clone?): %v\n%s", commit, err, msg)
	}
	out := filepath.Join(dir, binary)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-X github.com/apikeys/vault-plugin-secrets-apikeys/backend.Version="+version,
		"-o", out, "./cmd/vault-plugin-secrets-apikeys")
	build.Dir = src
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plugin at %s: %v\n%s", commit, err, msg)
	}
	return FileSHA256(out)
}

// RegisterVersion adds a version of the plugin to the catalog: binary (a
// file in the server's plugin directory) with its SHA-256, under
// PluginName, next to the versions already registered.
func (s *Server) RegisterVersion(ctx context.Context, binary, sha256, version string) error {
	if err := s.Client.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name:    PluginName,
		Type:    api.PluginTypeSecrets,
		Command: binary,
		SHA256:  sha256,
		Version: version,
	}); err != nil {
		return fmt.Errorf("registering %s %s: %w", PluginName, version, err)
	}
	return nil
}

// MountVersion mounts the plugin at path pinned to a registered version.
func (s *Server) MountVersion(ctx context.Context, path, version string) error {
	return mountPlugin(ctx, s.Client, version, path)
}

// SwitchVersion moves the mount at path to another registered version, as
// `vault secrets tune -plugin-version=<version> <path>` followed by
// `vault plugin reload -mounts=<path>` does: the mount keeps its storage and
// runs the other executable from then on.
func (s *Server) SwitchVersion(ctx context.Context, path, version string) error {
	// Only plugin_version is sent: api.MountConfigInput would send its
	// other fields too, some empty, and a tune must not touch them.
	if _, err := s.Client.Logical().WriteWithContext(ctx, "sys/mounts/"+path+"/tune",
		map[string]interface{}{"plugin_version": version}); err != nil {
		return fmt.Errorf("tuning %s to plugin version %s: %w", path, version, err)
	}
	if _, err := s.Client.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Mounts: []string{path}}); err != nil {
		return fmt.Errorf("reloading %s: %w", path, err)
	}
	return nil
}

// MountRunningVersion is the plugin version the mount at path runs.
func (s *Server) MountRunningVersion(ctx context.Context, path string) (string, error) {
	m, err := s.Client.Sys().GetMountWithContext(ctx, path)
	if err != nil {
		return "", err
	}
	return m.RunningVersion, nil
}
