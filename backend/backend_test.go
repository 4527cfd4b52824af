package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// testEnv is a backend over in-memory storage with a fake clock.
type testEnv struct {
	t       *testing.T
	b       *apikeysBackend
	storage logical.Storage
	clock   *clock.Fake
	ctx     context.Context
	// opts are the backend's options, kept for a restart.
	opts []backendOption
}

var testStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newTestEnv(t *testing.T, opts ...backendOption) *testEnv {
	t.Helper()
	fc := clock.NewFake(testStart)
	b := newBackend(fc, opts...)
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      logical.TestSystemView(),
		StorageView: &logical.InmemStorage{},
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	b.logger = conf.Logger
	return &testEnv{t: t, b: b, storage: conf.StorageView, clock: fc, ctx: context.Background(), opts: opts}
}

// do runs a request as an entity-bearing token and returns the response;
// errors from the handler fail the test.
func (e *testEnv) do(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.doErr(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func (e *testEnv) doErr(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	req := &logical.Request{
		Operation:           op,
		Path:                path,
		Data:                data,
		Storage:             e.storage,
		EntityID:            "entity-alice",
		DisplayName:         "userpass-alice",
		ClientTokenAccessor: "accessor-alice",
		ID:                  "req-" + path,
		Connection:          &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		exists, found, err := e.b.HandleExistenceCheck(e.ctx, req)
		if err == nil && found {
			if exists {
				req.Operation = logical.UpdateOperation
			} else {
				req.Operation = logical.CreateOperation
			}
		}
	}
	return e.b.HandleRequest(e.ctx, req)
}

// ok asserts a successful, non-error response.
func (e *testEnv) ok(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp := e.do(op, path, data)
	if resp != nil && resp.IsError() {
		e.t.Fatalf("%s %s: unexpected error response: %v", op, path, resp.Error())
	}
	return resp
}

// userErr asserts a 400-style error response mentioning want.
func (e *testEnv) userErr(op logical.Operation, path string, data map[string]interface{}, want string) {
	e.t.Helper()
	resp, err := e.doErr(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: expected a user error, got internal error %v", op, path, err)
	}
	if resp == nil || !resp.IsError() {
		e.t.Fatalf("%s %s: expected an error response, got %#v", op, path, resp)
	}
	if want != "" && !strings.Contains(resp.Error().Error(), want) {
		e.t.Fatalf("%s %s: error %q does not mention %q", op, path, resp.Error(), want)
	}
}

// setupClientRole creates client c (type typ) and role r.
func (e *testEnv) setupClientRole(c, typ, r string, role map[string]interface{}) {
	e.t.Helper()
	e.ok(logical.CreateOperation, "clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": typ})
	data := map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod"}
	for k, v := range role {
		data[k] = v
	}
	e.ok(logical.CreateOperation, "roles/"+r, data)
}

// storageKeys lists every storage key of the mount, recursively.
func (e *testEnv) storageKeys() []string {
	e.t.Helper()
	keys, err := logical.CollectKeys(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}
