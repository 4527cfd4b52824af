package vaulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Shared is the server of the running test package, set by RunMain.
var Shared *Server

var mountCount atomic.Int64

// RunMain starts one Vault for a test package, runs its tests and stops it.
// Call it from TestMain. On failure the server's directory (log, audit log)
// is kept and its path printed.
func RunMain(m *testing.M) { RunMainWith(m, Options{}) }

// RunMainWith is RunMain with options, e.g. Options{Raft: true} for a
// package whose tests need integrated storage or a restart.
func RunMainWith(m *testing.M, opts Options) {
	s, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting vault:", err)
		os.Exit(1)
	}
	Shared = s
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "vault log kept: %s\n", s.LogPath)
		os.Setenv("KEEP_VAULT_DIR", "1")
	}
	s.Stop()
	os.Exit(code)
}

// NewMount mounts the plugin at a fresh path for one test and returns it.
func NewMount(t testing.TB) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	path := fmt.Sprintf("t%d-%s", mountCount.Add(1), name)
	if err := Shared.MountAt(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Client returns a Vault API client with the root token.
func Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := Shared.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(Shared.Token)
	return c
}

// Write writes data at path and fails the test on error.
func Write(t testing.TB, path string, data map[string]interface{}) *api.Secret {
	t.Helper()
	s, err := Client(t).Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// Read reads path and fails the test on error.
func Read(t testing.TB, path string) *api.Secret {
	t.Helper()
	s, err := Client(t).Logical().Read(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s
}

// ExpectStatus asserts err is an HTTP error with the given status whose
// message contains the given text.
func ExpectStatus(t testing.TB, err error, status int, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected HTTP %d, got success", status)
	}
	re, ok := err.(*api.ResponseError)
	if !ok {
		t.Fatalf("expected an HTTP error, got %v", err)
	}
	if re.StatusCode != status {
		t.Fatalf("expected HTTP %d, got %d: %v", status, re.StatusCode, re.Errors)
	}
	if contains != "" && !strings.Contains(strings.Join(re.Errors, " "), contains) {
		t.Fatalf("error %q does not mention %q", re.Errors, contains)
	}
}

// Num converts a JSON number from a response to int64.
func Num(t testing.TB, v interface{}) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer: %v", v, err)
	}
	return i
}

// RawList lists a mount's raw storage under prefix (sys/raw), for tests
// that check what was (not) stored or tamper with storage on purpose.
func RawList(t testing.TB, mount, prefix string) []string {
	t.Helper()
	uuid, err := Shared.MountUUID(context.Background(), mount)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Client(t).Logical().List("sys/raw/logical/" + uuid + "/" + prefix)
	if err != nil {
		t.Fatalf("raw list: %v", err)
	}
	if s == nil || s.Data["keys"] == nil {
		return nil
	}
	var out []string
	for _, k := range s.Data["keys"].([]interface{}) {
		out = append(out, k.(string))
	}
	return out
}

// RawPath is the sys/raw path of a mount's storage key.
func RawPath(t testing.TB, mount, key string) string {
	t.Helper()
	uuid, err := Shared.MountUUID(context.Background(), mount)
	if err != nil {
		t.Fatal(err)
	}
	return "sys/raw/logical/" + uuid + "/" + key
}

// WaitFor polls cond until it holds or the deadline passes: real-Vault
// tests wait on background work with a deadline, never a fixed sleep.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond) // polling a running Vault, not timing
	}
}

// SetupClientRole writes client c of type typ (owner "team-<c>") and role
// with scope orders:read in environment prod at mount; extra overrides or
// adds role fields.
func SetupClientRole(t testing.TB, mount, c, typ, role string, extra map[string]interface{}) {
	t.Helper()
	Write(t, mount+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": typ})
	data := map[string]interface{}{"scopes": "orders:read", "environment": "prod"}
	for k, v := range extra {
		data[k] = v
	}
	Write(t, mount+"/roles/"+role, data)
}
