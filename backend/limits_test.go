package backend

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

var captureRe = regexp.MustCompile(`\(\?P<(\w+)>[^)]*\)`)

// concretePath fills a path pattern's segments with the given values (a
// default name for those not given).
func concretePath(pattern string, segs map[string]string) string {
	p := captureRe.ReplaceAllStringFunc(pattern, func(m string) string {
		name := captureRe.FindStringSubmatch(m)[1]
		if v, ok := segs[name]; ok {
			return v
		}
		return "x1"
	})
	return strings.TrimPrefix(strings.TrimSuffix(strings.TrimSuffix(p, "$"), "/?"), "^")
}

func pathOps(p *framework.Path) []logical.Operation {
	var ops []logical.Operation
	for op := range p.Operations {
		ops = append(ops, op)
	}
	for op := range p.Callbacks {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i] < ops[j] })
	return ops
}

func isCapture(p *framework.Path, field string) bool {
	return strings.Contains(p.Pattern, "(?P<"+field+">")
}

// snapshot is every storage entry of the mount, for "nothing changed".
func (e *testEnv) snapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, k := range e.storageKeys() {
		entry, err := e.storage.Get(e.ctx, k)
		if err != nil {
			e.t.Fatal(err)
		}
		if entry != nil {
			out[k] = string(entry.Value)
		}
	}
	return out
}

// status sends a request and returns the HTTP status Vault would answer
// and the error text.
func (e *testEnv) status(op logical.Operation, path string, data map[string]interface{}) (int, string) {
	e.t.Helper()
	req := &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.storage,
		EntityID: "entity-alice", DisplayName: "userpass-alice", ID: "req-limits",
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
		Headers:    map[string][]string{"X-Api-Key": {"ak_prod_notakey"}},
	}
	resp, err := e.b.HandleRequest(e.ctx, req)
	code, rerr := logical.RespondErrorCommon(req, resp, err)
	if code == 0 {
		return http.StatusOK, ""
	}
	msg := ""
	if rerr != nil {
		msg = rerr.Error()
	}
	return code, msg
}

// limitsEnv is a mount with one of everything, so update paths find what
// they update.
func limitsEnv(t *testing.T) *testEnv {
	e := newTestEnv(t)
	e.setupClientRole("x1", "internal", "r1", nil)
	e.issue("x1", "k1", "r1", nil)
	return e
}

// oversized is a value of field f's type that is over limit (a little over
// 1 MB, where Vault's Raft storage refuses an entry).
func oversized(f *framework.FieldSchema, lim fieldLimit) interface{} {
	big := strings.Repeat("a", 1200*1024)
	switch {
	case isPairs(f.Type):
		return map[string]interface{}{"k": big}
	case isList(f.Type):
		return []interface{}{big}
	}
	return big
}

// Every field of every path, taken from the backend's own paths (so a new
// field is covered without being listed here), refuses an oversized value
// with a 400 naming the field, before anything is stored.
func TestEveryFieldIsBounded(t *testing.T) {
	e := limitsEnv(t)
	n := 0
	for _, p := range e.b.Paths {
		for name, f := range p.Fields {
			lim := limitFor(name, f)
			if !strings.Contains(f.Description, lim.describe(f.Type)) {
				t.Errorf("%s: field %s does not state its limit in its description: %q", p.Pattern, name, f.Description)
			}
			for _, op := range pathOps(p) {
				before := e.snapshot()
				path, data := concretePath(p.Pattern, nil), map[string]interface{}{}
				if isCapture(p, name) {
					path = concretePath(p.Pattern, map[string]string{name: strings.Repeat("a", 1200*1024)})
				} else {
					data[name] = oversized(f, lim)
				}
				code, msg := e.status(op, path, data)
				if code != http.StatusBadRequest || !strings.Contains(msg, name) {
					t.Errorf("%s %s with oversized %s: %d %.200q, want 400 naming the field", op, p.Pattern, name, code, msg)
				}
				if isTextual(f.Type) && !strings.Contains(msg, fmt.Sprintf("at most %d", lim.Chars)) {
					t.Errorf("%s %s with oversized %s: %.200q does not state the limit", op, p.Pattern, name, msg)
				}
				if len(msg) > 4096 {
					t.Errorf("%s %s with oversized %s: the error repeats the value (%d bytes)", op, p.Pattern, name, len(msg))
				}
				if after := e.snapshot(); !reflect.DeepEqual(before, after) {
					t.Errorf("%s %s with oversized %s changed storage", op, p.Pattern, name)
				}
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d field checks: the walk over the paths is broken", n)
	}
}

// Lists and maps of pairs are bounded in entries, not only in size.
func TestListAndPairFieldsBoundedInEntries(t *testing.T) {
	e := limitsEnv(t)
	for _, p := range e.b.Paths {
		for name, f := range p.Fields {
			if !isList(f.Type) && !isPairs(f.Type) || isCapture(p, name) {
				continue
			}
			lim := limitFor(name, f)
			var v interface{}
			if isList(f.Type) {
				var l []interface{}
				for i := 0; i <= lim.Items; i++ {
					l = append(l, fmt.Sprint("e", i))
				}
				v = l
			} else {
				m := map[string]interface{}{}
				for i := 0; i <= lim.Items; i++ {
					m[fmt.Sprint("k", i)] = "v"
				}
				v = m
			}
			for _, op := range pathOps(p) {
				before := e.snapshot()
				code, msg := e.status(op, concretePath(p.Pattern, nil), map[string]interface{}{name: v})
				if code != http.StatusBadRequest || !strings.Contains(msg, fmt.Sprintf("%s: at most %d", name, lim.Items)) {
					t.Errorf("%s %s with %d entries of %s: %d %q", op, p.Pattern, lim.Items+1, name, code, msg)
				}
				if after := e.snapshot(); !reflect.DeepEqual(before, after) {
					t.Errorf("%s %s with too many %s changed storage", op, p.Pattern, name)
				}
			}
		}
	}
}

// An unknown field is a 400 naming it on every operation of every path
// (Vault itself only warns, so scope= for scopes= would silently change
// nothing), except reads of paths that take no input at all.
func TestUnknownFieldsRefused(t *testing.T) {
	e := limitsEnv(t)
	for _, p := range e.b.Paths {
		for _, op := range pathOps(p) {
			before := e.snapshot()
			code, msg := e.status(op, concretePath(p.Pattern, nil), map[string]interface{}{"no_such_field": "x"})
			if len(p.Fields) == 0 && (op == logical.ReadOperation || op == logical.ListOperation) {
				if code == http.StatusBadRequest && strings.Contains(msg, "no_such_field") {
					t.Errorf("%s %s refuses a query parameter though it takes no input", op, p.Pattern)
				}
				continue
			}
			if code != http.StatusBadRequest || !strings.Contains(msg, `unknown field "no_such_field"`) {
				t.Errorf("%s %s with an unknown field: %d %q", op, p.Pattern, code, msg)
			}
			if after := e.snapshot(); !reflect.DeepEqual(before, after) {
				t.Errorf("%s %s with an unknown field changed storage", op, p.Pattern)
			}
		}
	}
}

// The mistyped field of the issue: scope= for scopes= on an existing role.
func TestMistypedRoleFieldRefused(t *testing.T) {
	e := limitsEnv(t)
	before := e.ok(logical.ReadOperation, "roles/r1", nil).Data["scopes"]
	e.userErr(logical.UpdateOperation, "roles/r1", map[string]interface{}{"scope": "orders:read"}, `unknown field "scope"`)
	if got := e.ok(logical.ReadOperation, "roles/r1", nil).Data["scopes"]; !reflect.DeepEqual(got, before) {
		t.Fatalf("scopes changed: %v -> %v", before, got)
	}
	// A field name that is not shaped like one (it may be a pasted key)
	// is not repeated.
	code, msg := e.status(logical.UpdateOperation, "roles/r1", map[string]interface{}{"ak_prod_Secret123": "x"})
	if code != http.StatusBadRequest || strings.Contains(msg, "Secret123") || !strings.Contains(msg, "unknown field") {
		t.Fatalf("odd field name: %d %q", code, msg)
	}
}

// Values within the limits pass, up to the limit exactly.
func TestValuesAtTheLimitAccepted(t *testing.T) {
	e := limitsEnv(t)
	desc := strings.Repeat("é", limitText) // characters, not bytes
	e.ok(logical.UpdateOperation, "clients/x1", map[string]interface{}{"description": desc})
	if got := e.ok(logical.ReadOperation, "clients/x1", nil).Data["description"]; got != desc {
		t.Fatalf("description = %.40q", got)
	}
	e.userErr(logical.UpdateOperation, "clients/x1", map[string]interface{}{"description": desc + "é"}, "description: at most 1024 characters")
	// -f with no data, and reads with no data, pass.
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.ok(logical.ReadOperation, "keys/x1/k1", nil)
	// The jwks fetch ignores query parameters (cache busters).
	e.ok(logical.ReadOperation, "jwks", map[string]interface{}{"_": "123"})
}

// A key walk's cursor names a client and a key, each up to a name's limit,
// so the fields that carry one take both.
func TestLongestCursorAccepted(t *testing.T) {
	e := limitsEnv(t)
	cursor := strings.Repeat("c", 64) + "/" + strings.Repeat("k", 64)
	e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"after": cursor})
	e.userErr(logical.ReadOperation, "inventory", map[string]interface{}{"after": cursor + "k"}, "after: at most 129 characters")
	e.setupClientRole("a", "internal", "r", nil)
	data := map[string]interface{}{"action": "revoke", "all": true, "reason": "x", "dry_run": true, "cursor": cursor}
	e.ok(logical.UpdateOperation, "operations", data)
	data["cursor"] = cursor + "k"
	e.userErr(logical.UpdateOperation, "operations", data, "cursor: at most 129 characters")
}
