// Command dev runs the Vault server of `make dev`: bin/vault in dev mode on
// 127.0.0.1:$PORT (default 8200) with the plugin built from the working tree,
// registered by SHA-256 and version, mounted at apikeys/ exactly as the
// integration tests mount it (internal/vaulttest), a file audit device and
// the example policies. It stays in the foreground until Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run() error {
	port := 8200
	if p := os.Getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65534 {
			return fmt.Errorf("PORT must be a port number (got %q)", p)
		}
		port = n
	}
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, ".dev")
	stopLeftover(filepath.Join(dir, "vault.pid"))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := vaulttest.Start(ctx, vaulttest.DevOptions(port, dir))
	if err != nil {
		return fmt.Errorf("%w (is port %d taken? PORT=8300 make dev picks another)", err, port)
	}
	pidFile := filepath.Join(dir, "vault.pid")
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(s.PID())), 0o600)
	defer func() {
		s.Stop()
		_ = os.Remove(pidFile)
		fmt.Println("dev server stopped")
	}()

	fmt.Print(strings.NewReplacer(
		"{{version}}", s.PluginVersion, "{{mount}}", s.Mount, "{{addr}}", s.Addr, "{{token}}", s.Token,
		"{{root}}", root, "{{audit}}", s.AuditPath, "{{log}}", s.LogPath,
	).Replace(hints))
	select {
	case <-ctx.Done():
	case <-s.Done():
		return fmt.Errorf("vault exited; its log: %s", s.LogPath)
	}
	return nil
}

// stopLeftover ends a server that a previous run left behind (e.g. when it
// was killed with -9 and could not stop it).
func stopLeftover(pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || syscall.Kill(pid, 0) != nil {
		return
	}
	fmt.Println("stopping the dev server left by a previous run")
	_ = syscall.Kill(-pid, syscall.SIGKILL) // its process group: Vault and its plugins
	time.Sleep(time.Second)
}

const hints = `
  Vault dev server with vault-plugin-secrets-apikeys {{version}} mounted at {{mount}}/

    export VAULT_ADDR={{addr}} VAULT_TOKEN={{token}} PATH={{root}}/bin:$PATH

  Audit log: {{audit}}
  Server log: {{log}}

  Try (the README's walkthrough goes on from here):
    vault secrets list -detailed | grep {{mount}}
    vault path-help {{mount}}/config
    vault write {{mount}}/clients/billing owner=team-payments type=internal
    vault write {{mount}}/roles/orders-read scopes=orders:read environment=prod rotation_period=720h
    KEY=$(vault write -field=key {{mount}}/keys/billing/main role=orders-read)
    vault write {{mount}}/verify key="$KEY"
    vault read {{mount}}/log limit=5
    vault read {{mount}}/log/verify

  Ctrl-C stops the server.
`
