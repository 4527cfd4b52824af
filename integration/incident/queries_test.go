package incident

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// queriesRead reads path with query parameters through the API.
func queriesRead(t *testing.T, path string, params map[string]string) (*api.Secret, error) {
	t.Helper()
	q := map[string][]string{}
	for k, v := range params {
		q[k] = []string{v}
	}
	return client(t).Logical().ReadWithDataWithContext(context.Background(), path, q)
}

// queriesRaw sends GET /v1/<path>?<params> and returns status, content
// type and body, for answers the API client does not decode (raw bodies,
// LIST with parameters).
func queriesRaw(t *testing.T, path string, params url.Values) (int, string, []byte) {
	t.Helper()
	c := client(t)
	req := vaulttest.NewRequest(t, "GET", c.Address()+"/v1/"+path+"?"+params.Encode(), nil)
	req.Header.Set("X-Vault-Token", c.Token())
	resp, body := vaulttest.Do(t, req)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func queriesNames(t *testing.T, s *api.Secret) []string {
	t.Helper()
	var out []string
	for _, k := range s.Data["keys"].([]interface{}) {
		m := k.(map[string]interface{})
		out = append(out, m["client"].(string)+"/"+m["name"].(string))
	}
	return out
}

func TestQueriesInventoryPagesAndFilters(t *testing.T) {
	mount := newMount(t)
	setupClientRole(t, mount, "a", "internal", "r", nil)
	write(t, mount+"/clients/b", map[string]interface{}{"owner": "team-b", "type": "internal"})
	write(t, mount+"/roles/stage", map[string]interface{}{"scopes": "orders:read", "environment": "staging", "key_lifetime": "24h"})
	for i := 0; i < 5; i++ {
		issue(t, mount, "a", fmt.Sprintf("k%d", i), "r")
	}
	for i := 0; i < 3; i++ {
		issue(t, mount, "b", fmt.Sprintf("k%d", i), "stage")
	}
	write(t, mount+"/clients/gone", map[string]interface{}{"owner": "team-gone"})
	if _, err := client(t).Logical().Delete(mount + "/clients/gone"); err != nil {
		t.Fatal(err)
	}

	// Pages of 3 cover the 8 keys once, in order; the last has no next.
	var all []string
	after, pages := "", 0
	for {
		s, err := queriesRead(t, mount+"/inventory", map[string]string{"limit": "3", "after": after})
		if err != nil {
			t.Fatal(err)
		}
		all, pages = append(all, queriesNames(t, s)...), pages+1
		if pages == 1 && len(s.Data["tombstones"].([]interface{})) != 1 {
			t.Fatalf("first page tombstones: %v", s.Data["tombstones"])
		}
		next, _ := s.Data["next"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if got := strings.Join(all, " "); got != "a/k0 a/k1 a/k2 a/k3 a/k4 b/k0 b/k1 b/k2" || pages != 3 {
		t.Fatalf("paged inventory: %s in %d pages", got, pages)
	}

	ka, err := queriesRead(t, mount+"/inventory", map[string]string{"client": "a", "limit": "1"})
	if err != nil {
		t.Fatal(err)
	}
	keyID := ka.Data["keys"].([]interface{})[0].(map[string]interface{})["key_id"].(string)
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"key_id": keyID}, "a/k0"},
		{map[string]string{"environment": "staging"}, "b/k0 b/k1 b/k2"},
		{map[string]string{"owner": "team-a", "role": "r", "state": "active", "limit": "2"}, "a/k0 a/k1"},
		{map[string]string{"expires_before": "2999-01-01T00:00:00Z"}, "b/k0 b/k1 b/k2"},
		{map[string]string{"expires_after": "2999-01-01T00:00:00Z"}, ""},
		{map[string]string{"last_used_before": "2000-01-01T00:00:00Z"}, ""},
		{map[string]string{"state": "disabled"}, ""},
	} {
		s, err := queriesRead(t, mount+"/inventory", tc.params)
		if err != nil {
			t.Fatalf("inventory %v: %v", tc.params, err)
		}
		if got := strings.Join(queriesNames(t, s), " "); got != tc.want {
			t.Errorf("inventory %v: %q, want %q", tc.params, got, tc.want)
		}
	}
	for field, params := range map[string]map[string]string{
		"expires_before": {"expires_before": "tomorrow"},
		"limit":          {"limit": "5000"},
		"state":          {"state": "lost"},
		"after":          {"after": "no-cursor"},
		"bogus":          {"bogus": "1"},
	} {
		_, err := queriesRead(t, mount+"/inventory", params)
		expectStatus(t, err, 400, field)
	}
}

func TestQueriesKeyListPages(t *testing.T) {
	mount := newMount(t)
	setupClientRole(t, mount, "a", "internal", "r", nil)
	for i := 0; i < 5; i++ {
		issue(t, mount, "a", fmt.Sprintf("k%d", i), "r")
	}
	// vault list (no parameters): every name, as before.
	s, err := client(t).Logical().List(mount + "/keys/a/")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Data["keys"].([]interface{})); n != 5 || s.Data["next"] != nil {
		t.Fatalf("list without parameters: %v", s.Data)
	}
	// The HTTP API passes after and limit with list=true.
	status, _, body := queriesRaw(t, mount+"/keys/a/", url.Values{"list": {"true"}, "limit": {"2"}, "after": {"k1"}})
	if status != 200 || !strings.Contains(string(body), `"keys":["k2","k3"]`) || !strings.Contains(string(body), `"next":"k3"`) {
		t.Fatalf("paged list: %d %s", status, body)
	}
	status, _, body = queriesRaw(t, mount+"/keys/a/", url.Values{"list": {"true"}, "limit": {"0"}})
	if status != 400 || !strings.Contains(string(body), "limit") {
		t.Fatalf("list with limit 0: %d %s", status, body)
	}
}

func TestQueriesLogFilters(t *testing.T) {
	mount := newMount(t)
	setupClientRole(t, mount, "a", "internal", "r", nil)
	write(t, mount+"/clients/b", map[string]interface{}{"owner": "team-b"})
	issue(t, mount, "a", "k1", "r")
	issue(t, mount, "b", "k2", "r")
	write(t, mount+"/keys/a/k1/revoke", map[string]interface{}{"reason": "test"})
	types := func(params map[string]string) string {
		t.Helper()
		s, err := queriesRead(t, mount+"/log", params)
		if err != nil {
			t.Fatalf("log %v: %v", params, err)
		}
		var out []string
		for _, e := range s.Data["entries"].([]interface{}) {
			m := e.(map[string]interface{})
			out = append(out, fmt.Sprintf("%v:%v", m["client"], m["type"]))
		}
		return strings.Join(out, " ")
	}
	if got := types(map[string]string{"type": "key.*"}); got != "a:key.revoked b:key.issued a:key.issued" {
		t.Fatalf("type=key.*: %s", got)
	}
	if got := types(map[string]string{"type": "key.*", "order": "oldest"}); got != "a:key.issued b:key.issued a:key.revoked" {
		t.Fatalf("type=key.* oldest first: %s", got)
	}
	if got := types(map[string]string{"client": "b", "type": "key.issued"}); got != "b:key.issued" {
		t.Fatalf("client=b: %s", got)
	}
	// Root's token has no entity: its entries are by "token", never by
	// "system" (background work), so nothing of this test matches.
	if got := types(map[string]string{"actor": "system", "type": "key.*"}); got != "" {
		t.Fatalf("actor=system: %s", got)
	}
	if got := types(map[string]string{"until": "2000-01-01T00:00:00Z"}); got != "" {
		t.Fatalf("until 2000: %s", got)
	}
	for field, params := range map[string]map[string]string{
		"since": {"since": "noon"},
		"order": {"order": "sideways"},
		"type":  {"type": "k*.*"},
	} {
		_, err := queriesRead(t, mount+"/log", params)
		expectStatus(t, err, 400, field)
	}
}

func TestQueriesInventoryExport(t *testing.T) {
	mount := newMount(t)
	setupClientRole(t, mount, "a", "internal", "r", nil)
	var secrets []string
	for i := 0; i < 3; i++ {
		secrets = append(secrets, issue(t, mount, "a", fmt.Sprintf("k%d", i), "r"))
	}
	status, ct, body := queriesRaw(t, mount+"/inventory/export", url.Values{"format": {"csv"}, "limit": {"2"}})
	if status != 200 || !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("csv export: %d %q %s", status, ct, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, body)
	}
	if len(rows) != 4 || rows[0][0] != "key_id" || rows[1][2] != "k0" || rows[3][0] != "#next" || rows[3][1] != "a/k1" {
		t.Fatalf("csv rows: %q", rows)
	}
	status, ct, body = queriesRaw(t, mount+"/inventory/export", url.Values{"after": {"a/k1"}})
	if status != 200 || ct != "application/x-ndjson" || strings.Count(string(body), "\n") != 1 || !strings.Contains(string(body), `"name":"k2"`) {
		t.Fatalf("jsonl export: %d %q %s", status, ct, body)
	}
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Fatal("the export holds a key")
		}
	}
	status, _, body = queriesRaw(t, mount+"/inventory/export", url.Values{"format": {"xml"}})
	if status != 400 || !strings.Contains(string(body), "format") {
		t.Fatalf("format=xml: %d %s", status, body)
	}
}
