package fuzz

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// entityToken logs in through userpass with a policy granting the whole
// mount: the token has an identity entity, as people and applications
// have, so requests reach the paths that need one (approvals).
func entityToken(t *testing.T, s *vaulttest.Server) string {
	t.Helper()
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultAuthInput); err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf("path %q { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }\npath %q { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n", s.Mount+"/*", s.Mount)
	if err := c.Sys().PutPolicy("fuzz", policy); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/userpass/users/fuzzer", map[string]interface{}{"password": "fuzz-pass", "token_policies": "fuzz", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	login, err := c.Logical().Write("auth/userpass/login/fuzzer", map[string]interface{}{"password": "fuzz-pass"})
	if err != nil || login == nil || login.Auth == nil {
		t.Fatalf("userpass login: %v", err)
	}
	return login.Auth.ClientToken
}

// fixture is the set of objects one operation is fuzzed on: a client, a
// role, a key of them and (for paths of approval requests) a pending
// request, created fresh for the operation so one operation's successful
// writes (a revocation, a de-provisioning) do not starve another of depth.
type fixture struct {
	params  map[string]string
	base    map[string]interface{}
	watched []string // objects read back after every write
}

func (r *run) fixture(i int, op operation) (*fixture, error) {
	client, role, key := fmt.Sprintf("fc%d", i), fmt.Sprintf("fr%d", i), fmt.Sprintf("fk%d", i)
	steps := []struct {
		path string
		data map[string]interface{}
	}{
		{"clients/" + client, map[string]interface{}{"owner": "team-fuzz", "type": "internal"}},
		{"roles/" + role, map[string]interface{}{"scopes": "orders:read,orders:write", "audiences": "orders-api", "environment": "prod", "rotation_period": "720h", "grace_period": "1h"}},
		{"keys/" + client + "/" + key, map[string]interface{}{"role": role}},
	}
	var plaintext string
	for _, s := range steps {
		a, err := r.post(s.path, s.data)
		if err != nil {
			return nil, err
		}
		if k, ok := a.data["key"].(string); ok {
			plaintext = k
		}
	}
	if plaintext == "" {
		return nil, fmt.Errorf("issuing %s/%s returned no key", client, key)
	}
	requestID := "fuzz-id"
	if strings.HasPrefix(op.Template, "requests/{") {
		gated := "fa" + fmt.Sprint(i)
		if _, err := r.post("roles/"+gated, map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true}); err != nil {
			return nil, err
		}
		a, err := r.post("requests", map[string]interface{}{"client": client, "role": gated, "name": "gated", "justification": "fuzz"})
		if err != nil {
			return nil, err
		}
		if requestID = idOf(a.data); requestID == "" {
			return nil, fmt.Errorf("creating an approval request returned no id: %v", a.data)
		}
	}
	name := "fuzz"
	switch {
	case strings.HasPrefix(op.Template, "roles/"):
		name = role
	case strings.HasPrefix(op.Template, "clients/"):
		name = client
	case strings.HasPrefix(op.Template, "keys/"):
		name = key
	}
	return &fixture{
		params: map[string]string{"client": client, "role": role, "name": name, "id": requestID},
		base: map[string]interface{}{
			"owner": "team-fuzz", "type": "internal", "scopes": "orders:read", "environment": "prod",
			"role": role, "client": client, "key": plaintext, "reporter": "fuzzer", "source": "scanner",
			"scope": "orders:read", "audience": "orders-api", "client_ip": "10.0.0.1", "reason": "fuzz",
			"justification": "fuzz", "description": "fuzz", "purpose": "fuzz", "comment": "fuzz",
		},
		watched: []string{"clients/" + client, "roles/" + role, "keys/" + client + "/" + key},
	}, nil
}

// idOf finds the id of a created approval request in its answer, whatever
// the field is called (it is being renamed away from Vault's request_id).
func idOf(data map[string]interface{}) string {
	for _, k := range []string{"approval_id", "request_id", "id"} {
		if v, ok := data[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// post writes a fixture object with the entity token and wants success.
func (r *run) post(p string, data map[string]interface{}) (answer, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return answer{}, err
	}
	a, err := send(r.srv.Addr, r.token, "POST", r.mount, p, nil, body, nil)
	if err == nil && a.status >= 300 {
		err = fmt.Errorf("POST %s: %d %s", p, a.status, a.errorText())
	}
	return a, err
}

var vaultAuthInput = api.EnableAuthOptions{Type: "userpass"}
