// Command vault-plugin-secrets-apikeys is the external Vault plugin binary.
// Vault starts it, hands it TLS material through the environment and talks to
// it over gRPC; one process serves every mount of the plugin (multiplexing).
package main

import (
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend"
)

func main() {
	tuneGC()
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}

	tlsConfig := apiClientMeta.GetTLSConfig()
	tlsProviderFunc := api.VaultPluginTLSProvider(tlsConfig)

	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
		TLSProviderFunc:    tlsProviderFunc,
	}); err != nil {
		fatal(err)
	}
}

// tuneGC trades a little memory for CPU. The plugin answers many small
// requests (verify is the hot path) whose garbage is short-lived, so the
// default GOGC=100 collects more often than needed; a soft memory limit
// keeps the caches from pushing the process far beyond its usual size.
// Operators can still set GOGC and GOMEMLIMIT for the plugin (Vault passes
// a plugin only the environment it was registered with: vault plugin
// register -env GOGC=...).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
