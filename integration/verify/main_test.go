// Package verify tests the verify endpoint, its caches and usage tracking
// inside a real Vault server (see internal/vaulttest).
package verify

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }

var (
	newMount     = vaulttest.NewMount
	client       = vaulttest.Client
	write        = vaulttest.Write
	read         = vaulttest.Read
	expectStatus = vaulttest.ExpectStatus
	num          = vaulttest.Num
)

// setup creates client c and role r (scopes orders:read,orders:write in
// prod) with extra role fields.
func setup(t *testing.T, m, c, r string, role map[string]interface{}) {
	t.Helper()
	write(t, m+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": "internal"})
	data := map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod"}
	for k, v := range role {
		data[k] = v
	}
	write(t, m+"/roles/"+r, data)
}

func issue(t *testing.T, m, c, name, role string, extra map[string]interface{}) string {
	t.Helper()
	data := map[string]interface{}{"role": role}
	for k, v := range extra {
		data[k] = v
	}
	return write(t, m+"/keys/"+c+"/"+name, data).Data["key"].(string)
}

// verify returns the answer's data; verify is an HTTP 200 either way.
func verify(t testing.TB, c *api.Client, m, key string, extra map[string]interface{}) map[string]interface{} {
	t.Helper()
	data := map[string]interface{}{"key": key}
	for k, v := range extra {
		data[k] = v
	}
	s, err := c.Logical().Write(m+"/verify", data)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if s == nil {
		t.Fatal("verify: empty response")
	}
	return s.Data
}

// code is "" for an active answer, else the code; an inactive answer must
// hold nothing else.
func code(t testing.TB, m, key string, extra map[string]interface{}) string {
	t.Helper()
	d := verify(t, client(t), m, key, extra)
	if d["active"] == true {
		return ""
	}
	want := 2
	if d["code"] == "rate_limited" {
		// Only a rate-limited answer says more: when to retry, in seconds.
		if n, err := strconv.Atoi(fmt.Sprint(d["retry_after"])); err != nil || n < 1 {
			t.Fatalf("rate_limited answer without a positive retry_after: %v", d)
		}
		want = 3
	}
	if d["active"] != false || len(d) != want {
		t.Fatalf("inactive answer carries more than its code: %v", d)
	}
	return d["code"].(string)
}
