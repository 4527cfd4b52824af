package vaulttest

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/api"
)

// The steps that make a fresh Vault (a dev server, or a cluster through its
// active node) serve the plugin as users run it. Server and Cluster share
// them so both are set up alike.

// newClient returns an API client for addr with token. It does not retry:
// tests see every failure, and the helpers that wait for a state poll.
func newClient(addr, token string) (*api.Client, error) {
	conf := api.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := api.NewClient(conf)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// setupPlugin registers the plugin by SHA-256 and version, enables a file
// audit device writing to auditPath (none when empty) and mounts the plugin
// at mount.
func setupPlugin(ctx context.Context, c *api.Client, sha256, version, auditPath, mount string) error {
	sys := c.Sys()
	if err := sys.RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name:    PluginName,
		Type:    api.PluginTypeSecrets,
		Command: PluginBinary,
		SHA256:  sha256,
		Version: version,
	}); err != nil {
		return fmt.Errorf("registering plugin: %w", err)
	}
	if auditPath != "" {
		if err := sys.EnableAuditWithOptionsWithContext(ctx, "file", &api.EnableAuditOptions{
			Type:    "file",
			Options: map[string]string{"file_path": auditPath},
		}); err != nil {
			return fmt.Errorf("enabling audit device: %w", err)
		}
	}
	return mountPlugin(ctx, c, version, mount)
}

// mountPlugin mounts the registered plugin at path, pinned to its version,
// and tunes the audit settings for its non-secret identifiers. It passes the
// X-Api-Key request header through to the plugin, and the rate-limit
// headers back, for the GET form of verify (Vault passes neither way a
// header the mount does not list).
func mountPlugin(ctx context.Context, c *api.Client, version, path string) error {
	if err := c.Sys().MountWithContext(ctx, path, &api.MountInput{
		Type: PluginName,
		Config: api.MountConfigInput{
			PluginVersion:             version,
			AuditNonHMACRequestKeys:   NonHMACRequestKeys,
			AuditNonHMACResponseKeys:  NonHMACResponseKeys,
			PassthroughRequestHeaders: []string{"X-Api-Key"},
			AllowedResponseHeaders:    VerifyResponseHeaders,
		},
	}); err != nil {
		return fmt.Errorf("mounting plugin at %s: %w", path, err)
	}
	return nil
}
