package ha

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

var num = vaulttest.Num

var mountCount atomic.Int64

func cluster() *vaulttest.Cluster { return vaulttest.SharedCluster }

// newMount mounts the plugin at a fresh path for one test, so each test has
// its own keys and lifecycle log.
func newMount(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	path := fmt.Sprintf("t%d-%s", mountCount.Add(1), name)
	if err := cluster().MountAt(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// node returns a root client of node i; requests go to that node (and a
// standby forwards them to the active node).
func node(t *testing.T, i int) *api.Client {
	t.Helper()
	return cluster().Client(i)
}

func nodeID(i int) string { return cluster().Nodes[i].ID }

func write(t *testing.T, c *api.Client, path string, data map[string]interface{}) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s via %s: %v", path, c.Address(), err)
	}
	return s
}

func read(t *testing.T, c *api.Client, path string) *api.Secret {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil || s == nil {
		t.Fatalf("read %s via %s: %v (nil answer: %v)", path, c.Address(), err, s == nil)
	}
	return s
}

// waitActive waits until the cluster has settled and returns the active node.
func waitActive(t *testing.T) int {
	t.Helper()
	i, err := cluster().WaitActive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// stepDown makes active node i step down and returns the node that took over.
func stepDown(t *testing.T, i int) int {
	t.Helper()
	start := time.Now()
	j, err := cluster().StepDown(context.Background(), i)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s stepped down; %s active after %v", nodeID(i), nodeID(j), time.Since(start).Round(100*time.Millisecond))
	return j
}

// makeActive steps nodes down until node i is active.
func makeActive(t *testing.T, i int) {
	t.Helper()
	start := time.Now()
	if err := cluster().MakeActive(context.Background(), i); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s active (after %v)", nodeID(i), time.Since(start).Round(100*time.Millisecond))
}

// otherNode returns a running node other than i.
func otherNode(t *testing.T, i int) int {
	t.Helper()
	for _, nd := range cluster().Nodes {
		if nd.Index != i && nd.Running() {
			return nd.Index
		}
	}
	t.Fatalf("no running node besides %s", nodeID(i))
	return -1
}

// requireActive fails unless node i is (still) the active node and every
// other running node a standby: a test that means to send a request to a
// standby must know it did.
func requireActive(t *testing.T, i int) {
	t.Helper()
	ctx := context.Background()
	for _, nd := range cluster().Nodes {
		if !nd.Running() {
			continue
		}
		h, err := cluster().Health(ctx, nd.Index)
		if err != nil {
			t.Fatalf("health of %s: %v", nd.ID, err)
		}
		if want := nd.Index != i; h.Standby != want || h.Sealed {
			t.Fatalf("%s: standby=%v sealed=%v, want standby=%v (expected %s active)", nd.ID, h.Standby, h.Sealed, want, nodeID(i))
		}
	}
}

// setupClient writes a client with an owner.
func setupClient(t *testing.T, c *api.Client, m, name string) {
	t.Helper()
	write(t, c, m+"/clients/"+name, map[string]interface{}{"owner": "team-" + name, "type": "internal"})
}

// issue issues keys/<client>/<name> under role and returns the plaintext.
func issue(t *testing.T, c *api.Client, m, client, name, role string) string {
	t.Helper()
	s := write(t, c, m+"/keys/"+client+"/"+name, map[string]interface{}{"role": role})
	k, _ := s.Data["key"].(string)
	if k == "" {
		t.Fatalf("issue %s/%s returned no key", client, name)
	}
	return k
}

// verify calls the verify endpoint (POST) on c with optional extra fields
// and returns (active, code).
func verify(t *testing.T, c *api.Client, m, key string, extra map[string]interface{}) (bool, string) {
	t.Helper()
	data := map[string]interface{}{"key": key}
	for k, v := range extra {
		data[k] = v
	}
	s := write(t, c, m+"/verify", data)
	active, _ := s.Data["active"].(bool)
	code, _ := s.Data["code"].(string)
	return active, code
}

// expectVerify asserts verify's outcome: active, or inactive with code.
func expectVerify(t *testing.T, c *api.Client, m, key string, extra map[string]interface{}, wantActive bool, wantCode string) {
	t.Helper()
	active, code := verify(t, c, m, key, extra)
	if active != wantActive || (!wantActive && code != wantCode) {
		t.Fatalf("verify via %s %v: active=%v code=%q, want active=%v code=%q", c.Address(), extra, active, code, wantActive, wantCode)
	}
}

// verifyGET calls the GET form of verify with the key in the X-Api-Key
// header and returns the introspection document.
func verifyGET(t *testing.T, c *api.Client, m, key string) map[string]interface{} {
	t.Helper()
	r := c.NewRequest(http.MethodGet, "/v1/"+m+"/verify")
	r.Headers = http.Header{"X-Api-Key": []string{key}}
	resp, err := c.RawRequest(r)
	if err != nil {
		t.Fatalf("GET verify via %s: %v", c.Address(), err)
	}
	defer resp.Body.Close()
	var doc map[string]interface{}
	if err := resp.DecodeJSON(&doc); err != nil {
		t.Fatalf("GET verify answer: %v", err)
	}
	return doc
}

// logEntries returns the mount's whole lifecycle log, page by page.
func logEntries(t *testing.T, c *api.Client, m string) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	after := "0"
	for {
		s, err := c.Logical().ReadWithData(m+"/log", map[string][]string{"after": {after}, "limit": {"1000"}})
		if err != nil || s == nil {
			t.Fatalf("read log: %v", err)
		}
		for _, raw := range s.Data["entries"].([]interface{}) {
			out = append(out, raw.(map[string]interface{}))
		}
		next, ok := s.Data["next_after"]
		if !ok {
			return out
		}
		after = fmt.Sprint(next)
	}
}

// keyEvents filters log entries of one type about keys/<client>/<name>.
func keyEvents(entries []map[string]interface{}, typ, client, name string) []map[string]interface{} {
	var out []map[string]interface{}
	for _, e := range entries {
		if e["type"] == typ && e["client"] == client && e["key"] == name {
			out = append(out, e)
		}
	}
	return out
}

func actorType(e map[string]interface{}) string {
	a, _ := e["actor"].(map[string]interface{})
	return fmt.Sprint(a["type"])
}

func eventTime(t *testing.T, e map[string]interface{}) time.Time {
	t.Helper()
	return parseTime(t, e["time"])
}

func parseTime(t *testing.T, v interface{}) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return ts
}

// requireLogValid asserts log/verify reports an intact chain of n entries
// ending at head.
func requireLogValid(t *testing.T, c *api.Client, m string, n int, head string) {
	t.Helper()
	s := read(t, c, m+"/log/verify")
	if s.Data["valid"] != true || num(t, s.Data["entries"]) != int64(n) || s.Data["head"] != head {
		t.Fatalf("log/verify = %v, want valid, %d entries, head %s", s.Data, n, head)
	}
}

// pluginPIDs lists node i's plugin processes.
func pluginPIDs(t *testing.T, i int) []int {
	t.Helper()
	pids, err := cluster().PluginPIDs(i)
	if err != nil {
		t.Fatalf("cannot list processes: %v", err)
	}
	return pids
}

// requirePluginOnlyOn waits until node i is the only node running plugin
// processes. Vault OSS loads mounts only on the active node: a standby has
// no backend, so nothing there can run the plugin's periodic function. The
// old leader's plugin process ends shortly after its step-down.
func requirePluginOnlyOn(t *testing.T, i int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := true, ""
		for _, nd := range cluster().Nodes {
			pids := pluginPIDs(t, nd.Index)
			state += fmt.Sprintf(" %s:%v", nd.ID, pids)
			if (nd.Index == i) != (len(pids) > 0) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin processes not only on the active %s:%s", nodeID(i), state)
		}
		time.Sleep(200 * time.Millisecond) // polling, not timing
	}
}
