package governance

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"
)

// Real Vault identities: userpass users, each mapped to its own identity
// entity (so req.EntityID differs per person), logged in for a token.

var (
	userpassOnce     sync.Once
	userpassAccessor string
	userpassErr      error
)

func userpassMount(t *testing.T) string {
	t.Helper()
	userpassOnce.Do(func() {
		c := client(t)
		if userpassErr = c.Sys().EnableAuthWithOptions("userpass", &api.EnableAuthOptions{Type: "userpass"}); userpassErr != nil {
			return
		}
		auths, err := c.Sys().ListAuth()
		if err != nil {
			userpassErr = err
			return
		}
		userpassAccessor = auths["userpass/"].Accessor
	})
	if userpassErr != nil {
		t.Fatalf("enabling userpass: %v", userpassErr)
	}
	return userpassAccessor
}

type user struct {
	name     string
	entityID string
	c        *api.Client
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// newUser creates a userpass user named after the test, an entity for it
// (with metadata, e.g. client=billing for the templated application
// policy) holding the given policies, and logs it in.
func newUser(t *testing.T, name string, policies []string, metadata map[string]string) *user {
	t.Helper()
	acc := userpassMount(t)
	full := nonName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(full) > 40 {
		full = full[len(full)-40:]
	}
	full = strings.Trim(full+"-"+name, "-")
	const password = "correct-horse-battery"
	write(t, "auth/userpass/users/"+full, map[string]interface{}{"password": password})
	md := map[string]interface{}{}
	for k, v := range metadata {
		md[k] = v
	}
	ent := write(t, "identity/entity", map[string]interface{}{"name": full, "policies": policies, "metadata": md})
	id := ent.Data["id"].(string)
	write(t, "identity/entity-alias", map[string]interface{}{"name": full, "canonical_id": id, "mount_accessor": acc})
	c := client(t)
	c.ClearToken()
	s, err := c.Logical().Write("auth/userpass/login/"+full, map[string]interface{}{"password": password})
	if err != nil {
		t.Fatalf("login %s: %v", full, err)
	}
	if s.Auth.EntityID != id {
		t.Fatalf("login of %s mapped to entity %q, want %q", full, s.Auth.EntityID, id)
	}
	c.SetToken(s.Auth.ClientToken)
	return &user{name: full, entityID: id, c: c}
}

// mountPolicy writes a policy giving full access to one test mount and
// returns its name.
func mountPolicy(t *testing.T, mount string) string {
	t.Helper()
	name := "all-" + mount
	rules := fmt.Sprintf("path %q {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}\n", mount+"/*")
	if err := client(t).Sys().PutPolicy(name, rules); err != nil {
		t.Fatal(err)
	}
	return name
}

func (u *user) write(path string, data map[string]interface{}) (*api.Secret, error) {
	return u.c.Logical().Write(path, data)
}

// setup creates client c and role r (extra role fields merged) as root.
func setup(t *testing.T, m, c, r string, role map[string]interface{}) {
	t.Helper()
	write(t, m+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": "internal"})
	data := map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod"}
	for k, v := range role {
		data[k] = v
	}
	write(t, m+"/roles/"+r, data)
}

// verify presents a key and returns (active, code).
func verify(t *testing.T, m, key string, extra map[string]interface{}) (bool, string) {
	t.Helper()
	data := map[string]interface{}{"key": key}
	for k, v := range extra {
		data[k] = v
	}
	s := write(t, m+"/verify", data)
	active, _ := s.Data["active"].(bool)
	code, _ := s.Data["code"].(string)
	return active, code
}
