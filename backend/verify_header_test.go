package backend

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestKeyFromHeaders(t *testing.T) {
	cases := []struct {
		name    string
		headers map[string][]string
		want    string
		err     error
	}{
		{"canonical", map[string][]string{"X-Api-Key": {"k1"}}, "k1", nil},
		{"lower case", map[string][]string{"x-api-key": {"k1"}}, "k1", nil},
		{"upper case", map[string][]string{"X-API-KEY": {"k1"}}, "k1", nil},
		{"among others", map[string][]string{"Accept": {"*/*"}, "X-Api-Key": {"k1"}, "X-Request-Id": {"r"}}, "k1", nil},
		{"empty value", map[string][]string{"X-Api-Key": {""}}, "", nil},
		{"nil headers", nil, "", errNoKeyHeader},
		{"other headers only", map[string][]string{"X-Api-Keys": {"k1"}, "Api-Key": {"k1"}}, "", errNoKeyHeader},
		{"no values", map[string][]string{"X-Api-Key": {}}, "", errNoKeyHeader},
		{"two values", map[string][]string{"X-Api-Key": {"k1", "k2"}}, "", errManyKeyHeaders},
		{"two spellings", map[string][]string{"X-Api-Key": {"k1"}, "x-api-key": {"k1"}}, "", errManyKeyHeaders},
	}
	for _, tc := range cases {
		got, err := keyFromHeaders(tc.headers)
		if got != tc.want || err != tc.err {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// verifyGet runs a GET verify: the key (if any) in headers, the other
// fields as Vault passes query parameters (strings).
func (e *testEnv) verifyGet(headers map[string][]string, query map[string]interface{}) (*logical.Response, error) {
	return e.b.HandleRequest(e.ctx, &logical.Request{
		Operation:  logical.ReadOperation,
		Path:       "verify",
		Data:       query,
		Headers:    headers,
		Storage:    e.storage,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
}

// verifyGetData is a GET verify that must answer 200.
func (e *testEnv) verifyGetData(key string, query map[string]interface{}) map[string]interface{} {
	e.t.Helper()
	resp, err := e.verifyGet(map[string][]string{"X-Api-Key": {key}}, query)
	if err != nil || resp == nil || resp.IsError() {
		e.t.Fatalf("GET verify: %v %v", resp, err)
	}
	return introspectionBody(e.t, resp)
}

// introspectionBody decodes the raw RFC 7662 document of a GET verify.
func introspectionBody(t *testing.T, resp *logical.Response) map[string]interface{} {
	t.Helper()
	if resp.Data[logical.HTTPContentType] != "application/json" || resp.Data[logical.HTTPStatusCode] != http.StatusOK {
		t.Fatalf("GET verify is not a raw JSON document: %v", resp.Data)
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(resp.Data[logical.HTTPRawBody].([]byte), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// jsonShape round-trips data through JSON, so a POST answer (Go values)
// compares with a GET document (decoded JSON).
func jsonShape(t *testing.T, data map[string]interface{}) map[string]interface{} {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]interface{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyReadFormAnswersLikeWrite(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api", "key_lifetime": "720h"})
	key := e.issue("svc", "k", "r", map[string]interface{}{"scopes": "orders:read"})
	q := map[string]interface{}{"scope": "orders:read", "audience": "orders-api", "environment": "prod", "client_ip": "192.0.2.7"}

	post := e.verify(key, q)
	if post["active"] != true {
		t.Fatalf("POST: %v", post)
	}
	// The header name is case-insensitive; the answer is the POST answer.
	for _, name := range []string{"X-Api-Key", "x-api-key", "X-API-KEY"} {
		resp, err := e.verifyGet(map[string][]string{name: {key}, "Accept": {"*/*"}}, q)
		if err != nil || resp.IsError() {
			t.Fatalf("%s: %v %v", name, resp, err)
		}
		if got, want := introspectionBody(t, resp), jsonShape(t, post); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: GET answer %v differs from POST answer %v", name, got, want)
		}
	}
	// Inactive answers carry only their code, as on POST.
	for _, tc := range []struct {
		key   string
		query map[string]interface{}
		code  string
	}{
		{"not-a-key", nil, record.CodeMalformed},
		{"", nil, record.CodeMalformed},
		{key, map[string]interface{}{"scope": "orders:write", "audience": "orders-api"}, record.CodeForbiddenScope},
		{key, map[string]interface{}{"audience": "billing-api"}, record.CodeForbiddenAudience},
		{key, nil, record.CodeForbiddenAudience},
		{key, map[string]interface{}{"environment": "staging"}, record.CodeForbiddenEnvironment},
	} {
		d := e.verifyGetData(tc.key, tc.query)
		if len(d) != 2 || d["active"] != false || d["code"] != tc.code {
			t.Errorf("%v: %v, want code %s", tc.query, d, tc.code)
		}
	}
	// Usage counts both forms, with the source address.
	usage := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["usage"].(map[string]interface{})
	counts := usage["verify_counts"].(map[string]uint64)
	if counts[record.OutcomeActive] != 4 || counts[record.CodeForbiddenScope] != 1 {
		t.Fatalf("usage counts: %v", counts)
	}
}

func TestVerifyReadFormPendingAndRateLimit(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rate_limit": 3, "rate_limit_window": 60})
	key := e.issue("svc", "k", "r", nil)
	staged := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true}).Data["key"].(string)
	if d := e.verifyGetData(staged, nil); d["code"] != record.CodeNotFound {
		t.Fatalf("pending without allow_pending: %v", d)
	}
	// Query parameters arrive as strings.
	if d := e.verifyGetData(staged, map[string]interface{}{"allow_pending": "true"}); d["active"] != true || d["state"] != record.StatePending {
		t.Fatalf("pending with allow_pending=true: %v", d)
	}
	// One rate limit for both forms (per key).
	key = e.issue("svc", "k2", "r", nil)
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("POST 1: %q", c)
	}
	for i, want := range []interface{}{true, true, false} {
		if d := e.verifyGetData(key, nil); d["active"] != want {
			t.Fatalf("GET %d: %v", i+2, d)
		}
	}
	if c := e.verifyCode(key, nil); c != record.CodeRateLimited {
		t.Fatalf("POST after the limit: %q", c)
	}
	e.clock.Advance(time.Minute)
	if d := e.verifyGetData(key, nil); d["active"] != true {
		t.Fatalf("after the window: %v", d)
	}
}

func TestVerifyReadFormBadRequests(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	cases := []struct {
		name    string
		headers map[string][]string
		query   map[string]interface{}
		want    string
	}{
		{"no headers at all", nil, nil, "missing X-Api-Key header"},
		{"other headers only", map[string][]string{"Authorization": {"Bearer " + key}}, map[string]interface{}{"scope": "orders:read"}, "passthrough_request_headers=X-Api-Key"},
		{"two key headers", map[string][]string{"X-Api-Key": {key, key}}, nil, "exactly one X-Api-Key header"},
		{"key in the URL", nil, map[string]interface{}{"key": key}, "never put an API key in the URL"},
		{"key in the URL and header", map[string][]string{"X-Api-Key": {key}}, map[string]interface{}{"key": key}, "never put an API key in the URL"},
	}
	for _, tc := range cases {
		resp, err := e.verifyGet(tc.headers, tc.query)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp == nil || !resp.IsError() {
			t.Fatalf("%s: not a 400: %v", tc.name, resp)
		}
		msg := resp.Error().Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.name, msg, tc.want)
		}
		if strings.Contains(msg, key) {
			t.Errorf("%s: error echoes the key", tc.name)
		}
	}
	// None of them was counted as a use.
	usage := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["usage"].(map[string]interface{})
	if counts := usage["verify_counts"].(map[string]uint64); len(counts) != 0 {
		t.Fatalf("usage counts: %v", counts)
	}
}
