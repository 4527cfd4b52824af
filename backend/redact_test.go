package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// echoEnv is a mount with a client, a role and a key, whose server log
// is kept, and a second key of the mount (pasted) that the tests paste
// into the wrong fields.
type echoEnv struct {
	*testEnv
	key, pasted, secret string
	log                 *bytes.Buffer
}

func newEchoEnv(t *testing.T) *echoEnv {
	e := &echoEnv{testEnv: newTestEnv(t), log: &bytes.Buffer{}}
	e.b.logger = hclog.New(&hclog.LoggerOptions{Output: e.log, Level: hclog.Trace})
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api"})
	e.key = e.issue("svc", "k", "r", nil)
	e.pasted = e.issue("svc", "other", "r", nil)
	e.secret = e.pasted[strings.LastIndexByte(e.pasted, '_')+1:]
	return e
}

// send runs a request and fails if any text of the answer repeats the
// pasted key: the error, the error response, the warnings.
func (e *echoEnv) send(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.doErr(op, path, data)
	var texts []string
	if err != nil {
		texts = append(texts, err.Error())
	}
	if resp != nil {
		texts = append(texts, resp.Warnings...)
		if resp.IsError() {
			raw, _ := json.Marshal(resp.Data)
			texts = append(texts, string(raw))
		}
	}
	for _, s := range texts {
		if strings.Contains(s, e.secret) {
			e.t.Errorf("%s %s %v: the answer repeats the pasted key: %s", op, path, keysOf(data), s)
		}
	}
	return resp
}

// checkStored fails if a stored alert, a lifecycle-log entry or the
// server log holds the pasted key.
func (e *echoEnv) checkStored(what string) {
	e.t.Helper()
	e.do(logical.ListOperation, "alerts/", nil) // stores what verify detected
	keys, err := logical.CollectKeys(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	checked := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, storageAlertPrefix) && !strings.HasPrefix(k, "log/entries/") {
			continue
		}
		entry, err := e.storage.Get(e.ctx, k)
		if err != nil || entry == nil {
			e.t.Fatalf("%s: %v", k, err)
		}
		checked++
		if bytes.Contains(entry.Value, []byte(e.secret)) {
			e.t.Errorf("%s: stored %s holds the pasted key: %s", what, k, entry.Value)
		}
	}
	if checked == 0 {
		e.t.Fatalf("%s: no log entry to check", what)
	}
	if strings.Contains(e.log.String(), e.secret) {
		e.t.Errorf("%s: the server log holds the pasted key", what)
	}
}

func keysOf(data map[string]interface{}) []string {
	var out []string
	for k := range data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// openAPI is the mount's OpenAPI document, as Vault builds it.
func (e *testEnv) openAPI() *framework.OASDocument {
	e.t.Helper()
	if sv, ok := e.b.System().(*logical.StaticSystemView); ok && sv.PluginEnvironment == nil {
		sv.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "test"} // the root help reads it
	}
	resp, err := e.b.HandleRequest(e.ctx, &logical.Request{Operation: logical.HelpOperation, Storage: e.storage})
	if err != nil {
		e.t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		e.t.Fatalf("no OpenAPI document: %T", resp.Data["openapi"])
	}
	return doc
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// Every path and every field of the mount (from its OpenAPI document, so a
// new path or field is covered without anyone adding it here): a key
// pasted into a path segment, or into any field, is never repeated by an
// error or a warning, nor by an alert, a log entry or a server log line.
// Key-shaped names are refused without being repeated.
func TestPastedKeyIsNeverEchoed(t *testing.T) {
	doc := newEchoEnv(t).openAPI()
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	valid := map[string]string{"client": "svc", "name": "k", "role": "r"}
	requests := 0
	for _, p := range paths {
		item := doc.Paths[p]
		ops := map[logical.Operation]*framework.OASOperation{
			logical.ReadOperation: item.Get, logical.UpdateOperation: item.Post,
			logical.DeleteOperation: item.Delete, logical.PatchOperation: item.Patch,
		}
		for _, op := range []logical.Operation{logical.ReadOperation, logical.UpdateOperation, logical.PatchOperation, logical.DeleteOperation} {
			oas := ops[op]
			if oas == nil {
				continue
			}
			if strings.HasSuffix(p, "/") && op == logical.ReadOperation {
				op = logical.ListOperation
			}
			var fields []string
			for _, prm := range oas.Parameters {
				if prm.In == "query" {
					fields = append(fields, prm.Name)
				}
			}
			if oas.RequestBody != nil {
				for _, mt := range oas.RequestBody.Content {
					for name := range mt.Schema.Properties {
						fields = append(fields, name)
					}
					if mt.Schema.Ref != "" {
						for name := range doc.Components.Schemas[strings.TrimPrefix(mt.Schema.Ref, "#/components/schemas/")].Properties {
							fields = append(fields, name)
						}
					}
				}
			}
			sort.Strings(fields)

			// The key in every path segment.
			if pathParam.MatchString(p) {
				e := newEchoEnv(t)
				path := pathParam.ReplaceAllString(strings.TrimPrefix(p, "/"), e.pasted)
				e.send(op, path, nil)
				if op == logical.UpdateOperation {
					resp := e.send(logical.CreateOperation, path, map[string]interface{}{"role": "r"})
					if resp != nil && !resp.IsError() && (strings.HasPrefix(path, "clients/") || strings.HasPrefix(path, "roles/") || strings.HasPrefix(path, "keys/")) {
						t.Fatalf("a key-shaped name was accepted: %s", strings.ReplaceAll(p, e.pasted, "<key>"))
					}
				}
				e.checkStored(string(op) + " " + p)
				requests += 2
			}
			// The key in each field, the path otherwise valid; the key as a
			// field name too (the framework warns about unknown fields).
			e := newEchoEnv(t)
			path := pathParam.ReplaceAllStringFunc(strings.TrimPrefix(p, "/"), func(m string) string {
				param := pathParam.FindStringSubmatch(m)[1]
				switch {
				case param == "name" && strings.HasPrefix(p, "/clients/"):
					return "svc"
				case param == "name" && strings.HasPrefix(p, "/roles/"):
					return "r"
				case valid[param] != "":
					return valid[param]
				}
				return "x"
			})
			for _, f := range fields {
				e.send(op, path, map[string]interface{}{f: e.pasted})
				e.send(op, path, map[string]interface{}{f: []interface{}{"a", e.pasted}})
				requests += 2
			}
			e.send(op, path, map[string]interface{}{e.pasted: "1"})
			e.checkStored(fmt.Sprintf("%s %s with the key in %v", op, p, fields))
			requests++
		}
	}

	// The detections of verify and the token exchange repeat what was
	// asked for: scopes, audience, address.
	e := newEchoEnv(t)
	for _, f := range []map[string]interface{}{
		{"scope": "orders:read," + e.pasted}, {"audience": e.pasted}, {"client_ip": e.pasted}, {"environment": e.pasted},
	} {
		f["key"] = e.key
		e.send(logical.UpdateOperation, "verify", f)
		e.send(logical.UpdateOperation, "token", map[string]interface{}{"key": e.key, "audience": e.pasted, "scope": e.pasted})
		e.send(logical.UpdateOperation, "token", map[string]interface{}{"key": e.key, "audience": "orders-api", "scope": e.pasted})
	}
	if len(e.alertsOf(record.AlertForbiddenAudience)) == 0 && len(e.alertsOf(record.AlertForbiddenScope)) == 0 {
		e.do(logical.ListOperation, "alerts/", nil)
	}
	if len(e.alertsOf(record.AlertForbiddenAudience)) == 0 || len(e.alertsOf(record.AlertForbiddenScope)) == 0 {
		t.Fatal("the pasted scope and audience raised no alert to check")
	}
	e.checkStored("verify and token detections")
	t.Logf("%d paths, %d requests", len(paths), requests)
}

func TestKeyShapedNamesRefused(t *testing.T) {
	e := newEchoEnv(t)
	for path, data := range map[string]map[string]interface{}{
		"clients/" + e.pasted:     {"owner": "o", "type": "internal"},
		"roles/" + e.pasted:       {"scopes": "orders:read", "environment": "prod"},
		"keys/svc/" + e.pasted:    {"role": "r"},
		"keys/" + e.pasted + "/k": {"role": "r"},
	} {
		resp := e.send(logical.CreateOperation, path, data)
		if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "looks like an API key") {
			t.Fatalf("%s: %v", strings.ReplaceAll(path, e.pasted, "<key>"), resp)
		}
	}
	e.send(logical.CreateOperation, "keys/svc/k2", map[string]interface{}{"role": e.pasted})
	e.checkStored("names")
}
