package backend

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestGoldenStorageSchema pins the storage format: after a scripted run over
// every kind of record on the fake clock, each storage key prefix (ids, names
// and hashes replaced by placeholders) with the JSON field paths seen in its
// values. A re-layout must leave it identical; a format change shows up here.
func TestGoldenStorageSchema(t *testing.T) {
	e := newTestEnv(t)
	names := goldenScript(e)
	schema := map[string]map[string]bool{}
	for _, sk := range e.storageKeys() {
		kind := storageKind(sk, names)
		if schema[kind] == nil {
			schema[kind] = map[string]bool{}
		}
		entry, err := e.storage.Get(e.ctx, sk)
		if err != nil || entry == nil {
			t.Fatalf("read %s: %v", sk, err)
		}
		var v interface{}
		if err := json.Unmarshal(entry.Value, &v); err != nil {
			schema[kind]["<not json>"] = true
			continue
		}
		jsonFieldPaths(v, "", names, schema[kind])
	}
	out := map[string][]string{}
	for kind, fields := range schema {
		list := []string{}
		for f := range fields {
			list = append(list, f)
		}
		sort.Strings(list)
		out[kind] = list
	}
	checkGolden(t, "storage_schema.json", sortedJSON(t, out))
}

// goldenScript drives the mount through config, clients, roles, keys
// (issue, rotate, stage and promote, revoke), leased creds, approvals,
// alerts, a leak report, lock and unlock, the token exchange and the
// periodic tick (rotation, governance, purge). It returns the names it
// chose, which storageKind replaces by <name>.
func goldenScript(e *testEnv) map[string]bool {
	e.t.Helper()
	// As the mount's start does: the schedules' due index and its state.
	e.startSchedules()
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{
		"token_ttl": "2m", "leased_key_retention": "1h", "review_period": "720h",
		"verify_burst_threshold": 3, "failed_verify_threshold": 2, "alert_window": "1m",
	})
	e.setupClientRole("acme-co", "internal", "svc-role", map[string]interface{}{"audiences": "orders-api", "rotation_period": "48h"})
	e.setupClientRole("partner-co", "external", "lease-role", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	e.ok(logical.CreateOperation, "roles/gated-role", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})

	e.ok(logical.CreateOperation, "keys/acme-co/main-key", map[string]interface{}{"role": "svc-role"})
	e.ok(logical.CreateOperation, "keys/acme-co/other-key", map[string]interface{}{"role": "svc-role"})
	// Verify uses the new version, so no retirement waits on adoption.
	main := e.ok(logical.UpdateOperation, "keys/acme-co/main-key/rotate", nil).Data["key"].(string)
	e.ok(logical.UpdateOperation, "keys/acme-co/other-key/rotate", map[string]interface{}{"stage": true})
	e.ok(logical.UpdateOperation, "keys/acme-co/other-key/promote", nil)
	e.ok(logical.CreateOperation, "keys/acme-co/doomed-key", map[string]interface{}{"role": "svc-role"})
	e.ok(logical.UpdateOperation, "keys/acme-co/doomed-key/revoke", nil)

	// Verify outcomes: successes and failures past the alert thresholds.
	for i := 0; i < 4; i++ {
		e.do(logical.UpdateOperation, "verify", map[string]interface{}{"key": main, "audience": "orders-api"})
		e.do(logical.UpdateOperation, "verify", map[string]interface{}{"key": "ak_prod_unknownunknownunknown"})
	}
	e.ok(logical.UpdateOperation, "token", map[string]interface{}{"key": main, "audience": "orders-api", "scope": "orders:read"})

	lease := e.credsRead("partner-co", "lease-role", nil)
	leaseIssued := e.clock.Now()

	id := e.newRequest("alice", "acme-co", "gated-role", "approved-key", nil)
	expectOK(e.t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", nil))
	expectOK(e.t, e.doAs("alice", logical.CreateOperation, "keys/acme-co/approved-key", map[string]interface{}{"role": "gated-role", "approval_id": id}))
	denied := e.newRequest("alice", "acme-co", "gated-role", "denied-key", nil)
	expectOK(e.t, e.doAs("bob", logical.UpdateOperation, "requests/"+denied+"/deny", nil))

	leaked := e.ok(logical.CreateOperation, "keys/acme-co/leaked-key", map[string]interface{}{"role": "svc-role"}).Data["key"].(string)
	e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": leaked, "reporter": "scanner", "source": "https://example.com/x"})

	e.ok(logical.UpdateOperation, "clients/partner-co/lock", map[string]interface{}{"reason": "INC-42"})
	e.ok(logical.UpdateOperation, "clients/partner-co/unlock", nil)

	e.clock.Advance(2 * time.Minute)
	e.periodicTick()
	if r, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RevokeOperation, lease, leaseIssued, 0)); err != nil || (r != nil && r.IsError()) {
		e.t.Fatalf("lease revoke: %+v %v", r, err)
	}
	// Past the rotation period and the leased-key retention.
	e.clock.Advance(49 * time.Hour)
	e.periodicTick()
	// One alert of a fixed type: which alerts stay open shows in governance.
	leak := e.alertsOf(record.AlertLeakReported)
	if len(leak) != 1 {
		e.t.Fatalf("leak alerts: %d", len(leak))
	}
	e.ok(logical.UpdateOperation, "alerts/"+leak[0].ID+"/ack", map[string]interface{}{"note": "seen"})
	e.ok(logical.UpdateOperation, "jwks/rotate", nil)
	e.clock.Advance(time.Minute)
	e.periodicTick()
	// A leased key that is still live, so its record stays in the schema.
	live := e.credsRead("partner-co", "lease-role", nil)

	// Notifications and automated response: an endpoint (its delivery
	// state included) and a policy that has acted on the leak alert.
	e.ok(logical.UpdateOperation, "notifications/config", map[string]interface{}{"retry_window": "12h"})
	e.ok(logical.UpdateOperation, "notifications/endpoints/soc-hook", map[string]interface{}{"url": "https://hooks.example.com/apikeys", "event_types": "alert.*"})
	e.ok(logical.UpdateOperation, "responses/lock-on-leak", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"})
	e.respond(leak[0])

	// Incident controls: a re-issue (the revoked key archived), a disabled
	// key, a client restriction and a bulk operation.
	e.ok(logical.UpdateOperation, "clients/acme-co/unlock", nil)
	e.ok(logical.UpdateOperation, "keys/acme-co/doomed-key", map[string]interface{}{"role": "svc-role"})
	e.ok(logical.UpdateOperation, "keys/acme-co/other-key/disable", map[string]interface{}{"reason": "INC-43"})
	e.ok(logical.UpdateOperation, "clients/acme-co/restriction", map[string]interface{}{"scopes": "orders:read", "ttl": "4h", "reason": "INC-43"})
	op := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "partner-co", "reason": "INC-44"}).Data["id"].(string)
	e.runOperation(op)
	// A de-provisioned client leaves a tombstone and its pointer.
	e.ok(logical.CreateOperation, "clients/gone-co", map[string]interface{}{"owner": "team-gone", "type": "internal"})
	e.ok(logical.DeleteOperation, "clients/gone-co", nil)

	return map[string]bool{
		"acme-co": true, "partner-co": true, "gone-co": true, "svc-role": true, "lease-role": true, "gated-role": true,
		"main-key": true, "other-key": true, "doomed-key": true, "approved-key": true, "denied-key": true, "leaked-key": true,
		"soc-hook": true, "lock-on-leak": true, op: true,
		lease.Data["name"].(string): true, live.Data["name"].(string): true,
	}
}

// periodicTick runs Vault's periodic function once.
func (e *testEnv) periodicTick() {
	e.t.Helper()
	if err := e.b.periodic(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		e.t.Fatalf("periodic: %v", err)
	}
}

var (
	goldenHMAC   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	goldenID     = regexp.MustCompile(`^([a-z]+_)?[0-9a-f]{16,}$`)
	goldenDate   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	goldenHour   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}$`)
	goldenUUID   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	goldenNumber = regexp.MustCompile(`^[0-9]+$`)
)

// placeholder names what a storage key segment or map key stands for when
// it is data (a name, date, id, hash or number) rather than part of the
// format. Ids of 16 or more hex digits (log sequence numbers included) are
// all <id>, so an id that happens to be all digits reads the same.
func placeholder(seg string, names map[string]bool) (string, bool) {
	if parts := strings.Split(seg, "~"); len(parts) > 1 {
		// A schedule pointer: <due>~<client>~<key name>.
		for i, p := range parts {
			parts[i], _ = placeholder(p, names)
		}
		return strings.Join(parts, "~"), true
	}
	switch {
	case goldenHour.MatchString(seg):
		return "<hour>", true
	case names[seg]:
		return "<name>", true
	case goldenDate.MatchString(seg):
		return "<date>", true
	case goldenUUID.MatchString(seg):
		return "<id>", true
	case goldenHMAC.MatchString(seg):
		return "<hmac>", true
	case goldenID.MatchString(seg):
		// Keep a type prefix such as req_ or kid_: it is part of the format.
		return goldenID.ReplaceAllString(seg, "${1}<id>"), true
	case goldenNumber.MatchString(seg):
		return "<n>", true
	}
	return seg, false
}

// storageKind is a storage key with its data segments replaced.
func storageKind(key string, names map[string]bool) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i], _ = placeholder(s, names)
	}
	return strings.Join(segs, "/")
}

// jsonFieldPaths adds the dotted field paths of v to into: nested objects
// as a.b, array elements as a[], map keys that are data as placeholders.
func jsonFieldPaths(v interface{}, prefix string, names map[string]bool, into map[string]bool) {
	switch v := v.(type) {
	case map[string]interface{}:
		for k, child := range v {
			k, _ = placeholder(k, names)
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			into[p] = true
			jsonFieldPaths(child, p, names, into)
		}
	case []interface{}:
		for _, child := range v {
			jsonFieldPaths(child, prefix+"[]", names, into)
		}
	}
}
