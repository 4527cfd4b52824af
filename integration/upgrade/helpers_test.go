package upgrade

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/hashicorp/vault/api"
)

var (
	client = vaulttest.Client
	write  = vaulttest.Write
	read   = vaulttest.Read
)

// release is the previous release as previous_release names it.
type release struct{ commit, version string }

func previousRelease(t *testing.T) release {
	t.Helper()
	f, err := os.Open("previous_release")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r release
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "commit":
			r.commit = v
		case "version":
			r.version = v
		}
	}
	if r.commit == "" || r.version == "" {
		t.Fatalf("previous_release names no commit and version: %+v", r)
	}
	return r
}

// user is a userpass user mapped to an identity entity of its own, so
// approvals see two different people.
type user struct {
	c *api.Client
}

func (u *user) write(path string, data map[string]interface{}) (*api.Secret, error) {
	return u.c.Logical().Write(path, data)
}

func newUser(t *testing.T, name, policy string) *user {
	t.Helper()
	const password = "correct-horse-battery"
	write(t, "auth/userpass/users/"+name, map[string]interface{}{"password": password})
	ent := write(t, "identity/entity", map[string]interface{}{"name": name, "policies": []string{policy}})
	auths, err := client(t).Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	write(t, "identity/entity-alias", map[string]interface{}{
		"name": name, "canonical_id": ent.Data["id"], "mount_accessor": auths["userpass/"].Accessor,
	})
	c := client(t)
	c.ClearToken()
	s, err := c.Logical().Write("auth/userpass/login/"+name, map[string]interface{}{"password": password})
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	c.SetToken(s.Auth.ClientToken)
	return &user{c: c}
}

// answer is what verify says about a key, without its times.
type answer struct {
	Active  bool
	Code    string
	KeyID   string
	Version string
	State   string
}

func verify(t *testing.T, m, key string) answer {
	t.Helper()
	d := write(t, m+"/verify", map[string]interface{}{"key": key, "audience": "orders-api"}).Data
	a := answer{Code: str(d["code"]), KeyID: str(d["key_id"]), Version: str(d["version"]), State: str(d["state"])}
	a.Active, _ = d["active"].(bool)
	return a
}

// str renders a response value for comparison by value: strings as they
// are, numbers in their JSON form (so 3 and "3" compare equal).
func str(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

// inventoryRow is a key as the inventory lists it.
type inventoryRow struct {
	Client, Name, State, Version string
	Leased                       bool
}

func inventory(t *testing.T, m string) map[string]inventoryRow {
	t.Helper()
	out := map[string]inventoryRow{}
	for _, it := range read(t, m+"/inventory").Data["keys"].([]interface{}) {
		k := it.(map[string]interface{})
		leased, _ := k["leased"].(bool)
		out[str(k["key_id"])] = inventoryRow{Client: str(k["client"]), Name: str(k["name"]), State: str(k["state"]), Version: str(k["version"]), Leased: leased}
	}
	return out
}

// logHead is the lifecycle log's integrity check.
type logHead struct {
	Valid   bool
	Entries int64
	Head    string
}

func verifyLog(t *testing.T, m string) logHead {
	t.Helper()
	d := read(t, m+"/log/verify").Data
	valid, _ := d["valid"].(bool)
	if !valid {
		t.Fatalf("log/verify: %v", d)
	}
	return logHead{Valid: valid, Entries: vaulttest.Num(t, d["entries"]), Head: str(d["head"])}
}

// logEntry reads the lifecycle log entry with sequence number seq.
func logEntry(t *testing.T, m string, seq int64) map[string]interface{} {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"after": {fmt.Sprint(seq - 1)}, "limit": {"1"}})
	if err != nil {
		t.Fatalf("reading log entry %d: %v", seq, err)
	}
	es := s.Data["entries"].([]interface{})
	if len(es) != 1 {
		t.Fatalf("log entry %d: %v", seq, s.Data)
	}
	return es[0].(map[string]interface{})
}

// alertIDs lists the mount's alerts by id with their type. Reading alerts
// also stores what verify detected since the last tick.
func alertIDs(t *testing.T, m string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, it := range read(t, m+"/alerts").Data["alerts"].([]interface{}) {
		a := it.(map[string]interface{})
		out[str(a["id"])] = str(a["type"])
	}
	return out
}
