package ha

import (
	"testing"
)

// TestRequestsThroughStandby: Vault OSS standbys forward every request to
// the active node, so a key issued on the active node verifies through a
// standby (POST, and the GET form whose X-Api-Key header must survive the
// forwarding), and a revocation sent to a standby takes effect on the
// active node at once.
func TestRequestsThroughStandby(t *testing.T) {
	m := newMount(t)
	a := waitActive(t)
	sb := otherNode(t, a)
	ca, cs := node(t, a), node(t, sb)
	requireActive(t, a)

	setupClient(t, ca, m, "svc")
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	s := write(t, ca, m+"/keys/svc/main", map[string]interface{}{"role": "r"})
	key, keyID := s.Data["key"].(string), s.Data["key_id"]

	v := write(t, cs, m+"/verify", map[string]interface{}{"key": key, "scope": "orders:read"})
	if v.Data["active"] != true || v.Data["key_id"] != keyID || v.Data["client"] != "svc" {
		t.Fatalf("verify via standby %s: %v", nodeID(sb), v.Data)
	}
	if doc := verifyGET(t, cs, m, key); doc["active"] != true || doc["key_id"] != keyID {
		t.Fatalf("GET verify via standby %s: %v", nodeID(sb), doc)
	}
	expectVerify(t, cs, m, key, map[string]interface{}{"scope": "orders:write"}, false, "forbidden_scope")

	// A write through the standby.
	write(t, cs, m+"/keys/svc/main/revoke", map[string]interface{}{"reason": "revoked via standby"})
	expectVerify(t, ca, m, key, nil, false, "revoked")
	if doc := verifyGET(t, ca, m, key); doc["active"] != false || doc["code"] != "revoked" {
		t.Fatalf("GET verify via active after revocation: %v", doc)
	}
	rev := keyEvents(logEntries(t, ca, m), "key.revoked", "svc", "main")
	if len(rev) != 1 || actorType(rev[0]) == "system" {
		t.Fatalf("key.revoked entries: %v", rev)
	}
	// Nothing moved meanwhile: the standby really was one throughout.
	requireActive(t, a)
}
