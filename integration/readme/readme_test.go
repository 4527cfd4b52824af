// Package readme runs the documentation: every `sh` block of README.md and
// of bootstrap/agent/README.md (which includes the CI example's command),
// verbatim and in order, one bash session per file, against a Vault started
// as `make dev` starts it. Only VAULT_ADDR differs: the documented
// http://127.0.0.1:8200 becomes the test server's address. The blocks are
// read from the markdown at test time, so the README and this test cannot
// diverge.
package readme

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// documentedAddr is the address the documentation tells users to export.
const documentedAddr = "http://127.0.0.1:8200"

// block is one fenced `sh` block of a markdown file.
type block struct {
	line    int    // line of the opening fence
	section string // the "## " heading it is under
	text    string
}

// shellBlocks returns the ```sh blocks of a markdown file in order.
func shellBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out     []block
		cur     *block
		section string
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case strings.TrimSpace(line) == "```sh":
			cur = &block{line: n, section: section}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", path, cur.line)
	}
	return out
}

// session is one file's blocks run by one bash process.
type session struct {
	output string
	blocks map[int]string // output of each block, by its index
}

// blockMarker separates the output of two blocks.
const blockMarker = "::readme-block "

// runSession runs the blocks in one `bash -euo pipefail` session at the
// repository root, with bin/ on PATH and a fresh HOME (vault login and the
// CLI's token helper must not touch the caller's). The process group is
// killed at the end, so a background `vault agent` cannot outlive the test.
func runSession(t *testing.T, root, doc string, blocks []block, addr string, timeout time.Duration) session {
	t.Helper()
	var script strings.Builder
	script.WriteString("trap 'echo \"::readme-failed line $LINENO: $BASH_COMMAND\" >&2' ERR\n")
	for i, b := range blocks {
		if i == 0 && !strings.Contains(b.text, documentedAddr) {
			t.Fatalf("%s:%d: the first block must export VAULT_ADDR=%s (the only thing this test changes)", doc, b.line, documentedAddr)
		}
		fmt.Fprintf(&script, "echo '%s%d %s:%d'\n", blockMarker, i, doc, b.line)
		script.WriteString(strings.ReplaceAll(b.text, documentedAddr, addr))
	}
	script.WriteString("echo '" + blockMarker + "end'\n")

	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script.String())
	cmd.Dir = root
	cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Join(root, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		// Nothing of the caller's Vault settings; Go's own settings stay
		// (the CI example is a `go run`).
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// HOME moved, so Go must be told where its caches are (the CI example
	// is a `go run`), or it would download every module again.
	for _, v := range []string{"GOPATH", "GOMODCACHE", "GOCACHE"} {
		val, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		cmd.Env = append(cmd.Env, v+"="+strings.TrimSpace(string(val)))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out := buf.String()
	if err != nil {
		t.Fatalf("%s: a documented command failed after %v (%v); output, each block after its %q line:\n%s", doc, time.Since(start).Round(time.Second), err, blockMarker, out)
	}
	t.Logf("%s: %d blocks ran in %v", doc, len(blocks), time.Since(start).Round(time.Second))
	s := session{output: out, blocks: map[int]string{}}
	parts := strings.Split(out, blockMarker)
	for _, p := range parts[1:] {
		var i int
		if _, err := fmt.Sscanf(p, "%d", &i); err == nil {
			s.blocks[i] = p
		}
	}
	return s
}

// inOrder fails unless the patterns match text one after the other.
func inOrder(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	rest := text
	for _, p := range patterns {
		loc := regexp.MustCompile(p).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("%s: no %q (in this order: %q); output:\n%s", what, p, patterns, text)
		}
		rest = rest[loc[1]:]
	}
}

// devServer starts Vault exactly as `make dev` does, on a free port.
func devServer(t *testing.T) (*vaulttest.Server, string) {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s, err := vaulttest.Start(context.Background(), vaulttest.DevOptions(0, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(s.LogPath); err == nil {
				t.Logf("vault log:\n%s", tail(string(b), 80))
			}
		}
		s.Stop()
	})
	return s, root
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func sectionsOf(blocks []block) map[string]int {
	out := map[string]int{}
	for _, b := range blocks {
		out[b.section]++
	}
	return out
}

func TestREADME(t *testing.T) {
	t.Parallel()
	s, root := devServer(t)
	blocks := shellBlocks(t, filepath.Join(root, "README.md"))
	secs := sectionsOf(blocks)
	for _, want := range []string{"Walkthrough with the vault CLI", "Gateways", "Short-lived credentials", "Governance", "Secret scanning", "Incident controls", "Log checkpoints and archival", "Retention"} {
		if secs[want] == 0 {
			t.Fatalf("README.md has no sh block under %q: the walkthrough would go untested", want)
		}
	}
	out := runSession(t, root, "README.md", blocks, s.Addr, 6*time.Minute)

	// The walkthrough: the key verifies, a bad client_ip is refused, the
	// revoked key is refused, the log is intact.
	inOrder(t, "walkthrough", out.blocks[indexOf(blocks, "Walkthrough with the vault CLI")],
		`(?m)^active\s+true$`,             // POST verify
		`"active":true`,                   // GET verify
		`client_ip must be an IP address`, // refused
		`(?m)^active\s+true$`,             // the staged version, with allow_pending
		`(?m)^code\s+revoked$`,            // after revoke
		`(?m)^valid\s+true$`,              // log/verify
	)
	// The proxy form: a 200 with the identity headers, a 401 without a key.
	inOrder(t, "gateways", out.blocks[indexOf(blocks, "Gateways")],
		`(?m)^HTTP/1\.1 200`, `(?mi)^x-apikeys-client: storefront\s*$`, `(?mi)^x-apikeys-scope: orders:list orders:read\s*$`, `(?m)^401$`)
	short := out.blocks[indexOf(blocks, "Short-lived credentials")]
	inOrder(t, "short-lived credentials", short,
		`(?m)^lease_id\s+apikeys/creds/acme/partner-orders/`,
		`(?m)^active\s+true$`,
		`(?m)^token\s+\S+\.\S+\.\S+$`,
		`"keys":\[`,
		`(?m)^code\s+revoked$`,
	)
	if !strings.Contains(out.output, "job got leased key") || !strings.Contains(out.output, "verify active=true") {
		t.Fatalf("the CI example did not report a verified leased key:\n%s", out.output)
	}
	gov := out.output[strings.Index(out.output, blockMarker+fmt.Sprint(indexOf(blocks, "Governance"))):]
	inOrder(t, "governance", gov,
		`(?m)^code\s+locked$`,
		`(?m)^status\s+revoked$`, // the leak report
		`leased keys revoked: 1`, // the de-provisioning's warning
		`(?m)^code\s+revoked$`,   // the de-provisioned client's leased key
		`(?m)^Keys\n-+\n\S+`,     // its lease, still listed by Vault
	)

	// Webhooks: the receiver verified the deliveries with the reference
	// library, got the one made while it was away, and saw the replay as a
	// duplicate of a webhook-id it had.
	hooks := indexOf(blocks, "Notifications (webhooks)")
	inOrder(t, "webhooks", out.blocks[hooks], `verified msg_\w+ type=client\.locked seq=\d+ client=billing`, `verified msg_\w+ type=client\.unlocked`)
	inOrder(t, "webhook retry", out.blocks[hooks+1], `"failures": [1-9]`, `verified msg_\w+ type=client\.locked .*receiver was away`)
	inOrder(t, "webhook replay", out.blocks[hooks+2], `duplicate msg_\w+`)

	// Incident controls: a disabled key refused and back, a re-issue that
	// names its predecessor, a restriction's refusals, the gateway's answer
	// and headers, a bulk revoke, and cursor pages.
	inc := indexOf(blocks, "Incident controls")
	inOrder(t, "per-key controls", out.blocks[inc], `(?m)^code\s+disabled$`, `(?m)^state\s+active$`, `(?m)^expires_at\s+2030-01-01T00:00:00Z$`, `"predecessors": \[\s+"kid_\w+"`)
	inOrder(t, "client restriction", out.blocks[inc+1], `(?m)^code\s+forbidden_scope$`, `(?m)^code\s+forbidden_ip$`, `(?m)^code\s+forbidden_audience$`, `(?m)^rate_limit\s+100$`)
	inOrder(t, "verify answer", out.blocks[inc+2], `"owner": "team-logistics"`, `"limit": 100`, `(?mi)^ratelimit-limit: 100`)
	inOrder(t, "bulk revoke", out.blocks[inc+3], `(?m)^matched\s+2$`, `(?m)^code\s+revoked$`, `(?m)^remaining\s+0$`)
	inOrder(t, "queries", out.blocks[inc+4], `"next": "logistics/trucks"`, `"name": "vans"`, `"keys":\["trucks"\],"next":"trucks"`, `"type": "key\.`, `(?m)^kid_\w+,logistics,trucks,orders-read,`)

	// The offline verifier accepts the checkpoints, the consistency and
	// inclusion proofs and the exported entries; archival waits for the
	// retention.
	logs := indexOf(blocks, "Log checkpoints and archival")
	inOrder(t, "log checkpoints", out.blocks[logs], `(?m)^pending\s+0$`, `ok: checkpoint of vault-apikeys/`, `ok: the log of \d+ entries extends the checkpoint of \d+ entries`,
		`ok: entry 1 is in the checkpoint`, `(?m)^complete\s+true$`, `(?m)^complete\s+true$`)
	inOrder(t, "log archival", out.blocks[logs+1], `ok: \d+ entries chain from the first, and match 2 checkpoint`, `within the retention`)

	// gitleaks found the issued key, apikeys-keycheck kept it, and the leak
	// report revoked it.
	inOrder(t, "secret scanning", out.blocks[indexOf(blocks, "Secret scanning")], `leaks found: 1`, `1 well-formed keys`, `(?m)^status\s+revoked$`)
	if k, err := s.Client.Logical().Read("apikeys/keys/billing/scan-demo"); err != nil || k == nil || k.Data["state"] != "revoked" {
		t.Fatalf("billing/scan-demo after the secret scanning section: %v %v", k, err)
	}

	// Retention settings are written and read back in seconds.
	inOrder(t, "retention", out.blocks[indexOf(blocks, "Retention")], `(?m)^2592000$`)

	// What the README says happened, checked through the API.
	c := s.Client
	if v, err := c.Logical().Read("apikeys/log/verify"); err != nil || v.Data["valid"] != true {
		t.Fatalf("log/verify after the walkthrough: %v %v", v, err)
	}
	key, err := c.Logical().Read("apikeys/keys/billing/checkout")
	if err != nil || key == nil || key.Data["state"] != "revoked" {
		t.Fatalf("billing/checkout after the walkthrough: %v %v", key, err)
	}
	gated, err := c.Logical().Read("apikeys/keys/billing/main")
	if err != nil || gated == nil || gated.Data["state"] != "active" {
		t.Fatalf("billing/main (issued on an approved request): %v %v", gated, err)
	}
	alerts, err := c.Logical().ReadWithData("apikeys/alerts", map[string][]string{"type": {"leak_reported"}})
	// The Governance section's leak, the one secret scanning found, and the
	// two of the response policies.
	if err != nil || alerts == nil || len(alerts.Data["alerts"].([]interface{})) != 4 {
		t.Fatalf("leak_reported alerts: %v %v", alerts, err)
	}
	// The response policies locked shop twice; the second lock was lifted
	// only through an approved unlock request.
	policies := out.blocks[indexOf(blocks, "Automated response policies")]
	inOrder(t, "response policies", policies, `(?m)^status\s+locked$`, `"response\.executed"`)
	inOrder(t, "re-approval", out.blocks[indexOf(blocks, "Automated response policies")+1], `requires re-approval`)
	shop, err := c.Logical().Read("apikeys/clients/shop")
	if err != nil || shop == nil || shop.Data["status"] != "active" {
		t.Fatalf("client shop after the approved unlock: %v %v", shop, err)
	}
	if inv, err := c.Logical().ReadWithData("apikeys/inventory", map[string][]string{"client": {"logistics"}, "state": {"active"}}); err != nil || inv == nil || vaulttest.Num(t, inv.Data["count"]) != 0 {
		t.Fatalf("active keys of logistics after the bulk revoke: %v %v", inv, err)
	}
	acme, err := c.Logical().Read("apikeys/clients/acme")
	if err != nil || acme == nil || acme.Data["status"] != "deprovisioned" {
		t.Fatalf("client acme after de-provisioning: %v %v", acme, err)
	}
	// The README's last command cleared the leases Vault kept listing.
	if l, err := c.Logical().List("sys/leases/lookup/apikeys/creds/acme/partner-orders"); err != nil || l != nil {
		t.Fatalf("leases of acme after vault lease revoke -prefix: %v %v", l, err)
	}
}

// indexOf is the index of the first block of a section.
func indexOf(blocks []block, section string) int {
	for i, b := range blocks {
		if b.section == section {
			return i
		}
	}
	return -1
}

func TestAgentREADME(t *testing.T) {
	t.Parallel()
	s, root := devServer(t)
	blocks := shellBlocks(t, filepath.Join(root, "bootstrap", "agent", "README.md"))
	if len(blocks) == 0 {
		t.Fatal("bootstrap/agent/README.md has no sh block")
	}
	out := runSession(t, root, "bootstrap/agent/README.md", blocks, s.Addr, 5*time.Minute)
	inOrder(t, "agent", out.output, `(?m)^ORDERS_API_KEY_VERSION=2$`, `key\.rotated`)

	// The rendered key is the key's current secret (the application's view).
	c := s.Client
	k, err := c.Logical().Read("apikeys/keys/checkout/main")
	if err != nil || k == nil {
		t.Fatal(err)
	}
	if v, _ := k.Data["version"].(json.Number).Int64(); v < 2 {
		t.Fatalf("checkout/main version %d after the agent saw version 2", v)
	}
}
