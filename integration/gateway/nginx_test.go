package gateway

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// nginxSite is what the shipped configuration is templated with: only
// addresses and paths, each of which must occur in the file.
type nginxSite struct {
	Listen     string // host:port nginx listens on
	Vault      string // host:port of Vault
	Upstream   string // host:port of the protected application
	Mount      string // the plugin's mount path
	Token      string // the gateway's Vault token
	configFile string
}

// shippedConfig returns bootstrap/gateways/nginx.conf with the site's
// addresses and paths put in; a placeholder that no longer occurs fails
// the test, so the file under test stays the shipped one.
func shippedConfig(t *testing.T, s nginxSite, tokenFile string) string {
	t.Helper()
	conf := bootstrapFile(t, "gateways", "nginx.conf")
	for _, r := range [][2]string{
		{"listen 127.0.0.1:8080;", "listen " + s.Listen + ";"},
		{"server 127.0.0.1:8200;", "server " + s.Vault + ";"},
		{"server 127.0.0.1:9000;", "server " + s.Upstream + ";"},
		{"/etc/nginx/apikeys-vault-token.conf", tokenFile},
		{"/v1/apikeys/verify/authorize?", "/v1/" + s.Mount + "/verify/authorize?"},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("bootstrap/gateways/nginx.conf no longer contains %q: update the test's template", r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	return conf
}

// startNginx runs nginx in the foreground with a main configuration that
// includes the shipped one, everything under a temporary prefix, and stops
// it when the test ends. The error log is printed if the test fails.
func startNginx(t *testing.T, s nginxSite) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			t.Fatalf("nginx is not installed (Debian package nginx): run `make deps`: %v", err)
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "apikeys-vault-token.conf")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// What Vault Agent would render from nginx-vault-token.ctmpl.
	write("apikeys-vault-token.conf", fmt.Sprintf("set $apikeys_vault_token %q;\n", s.Token))
	write("apikeys.conf", shippedConfig(t, s, tokenFile))
	errorLog := filepath.Join(dir, "error.log")
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, which cannot enter the 0700
		// temporary directory.
		user = "user root;"
	}
	main := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[3]s info;
events { worker_connections 64; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/apikeys.conf;
}
`, user, dir, errorLog)
	write("nginx.conf", main)

	check := exec.Command(bin, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", errorLog)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the shipped configuration: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", errorLog)
	done := runUntilCleanup(t, "nginx", cmd, syscall.SIGQUIT, errorLog) // SIGQUIT: graceful shutdown
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Listen, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatal("nginx exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v", s.Listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bootstrapFile reads a file of the repository's bootstrap/ directory: the
// shipped configurations are what the tests run.
func bootstrapFile(t *testing.T, path ...string) string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(append([]string{root, "bootstrap"}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
