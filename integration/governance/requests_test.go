package governance

import (
	"net/http"
	"testing"
)

// Separation of duties with two real Vault entities (SPEC §6).
func TestSeparationOfDutiesTwoEntities(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "gated", map[string]interface{}{"requires_approval": true})
	pol := mountPolicy(t, m)
	alice := newUser(t, "alice", []string{pol}, nil)
	bob := newUser(t, "bob", []string{pol}, nil)
	if alice.entityID == bob.entityID {
		t.Fatal("the two users share an entity")
	}

	// Issuing under the role without an approved request is a 400.
	_, err := alice.write(m+"/keys/billing/main", map[string]interface{}{"role": "gated"})
	expectStatus(t, err, http.StatusBadRequest, "requires approval")

	s, err := alice.write(m+"/requests", map[string]interface{}{"client": "billing", "role": "gated", "name": "main", "justification": "orders migration"})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Data["approval_id"].(string)
	if s.Data["state"] != "pending" || s.Data["expires_at"] == nil {
		t.Fatalf("new request: %v", s.Data)
	}

	// Self-approval is refused; so is the root token (no entity).
	_, err = alice.write(m+"/requests/"+id+"/approve", nil)
	expectStatus(t, err, http.StatusBadRequest, "separation of duties")
	_, err = client(t).Logical().Write(m+"/requests/"+id+"/approve", nil)
	expectStatus(t, err, http.StatusBadRequest, "no Vault identity entity")

	// Cross-approval is accepted and recorded with the approver's entity.
	s, err = bob.write(m+"/requests/"+id+"/approve", map[string]interface{}{"comment": "looks right"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["state"] != "approved" || s.Data["decided_by"].(map[string]interface{})["entity_id"] != bob.entityID {
		t.Fatalf("approved request: %v", s.Data)
	}
	// The approver cannot turn around and issue with it.
	_, err = bob.write(m+"/keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": id})
	expectStatus(t, err, http.StatusBadRequest, "separation of duties")

	s, err = alice.write(m+"/keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": id})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Data["key"].(string); k == "" {
		t.Fatal("no key issued with the approval")
	}
	if active, code := verify(t, m, s.Data["key"].(string), nil); !active {
		t.Fatalf("issued key does not verify: %s", code)
	}

	// Single use.
	_, err = alice.write(m+"/keys/billing/second", map[string]interface{}{"role": "gated", "approval_id": id})
	expectStatus(t, err, http.StatusBadRequest, "already used")
	s = read(t, m+"/requests/"+id)
	if s.Data["state"] != "used" {
		t.Fatalf("request after use: %v", s.Data)
	}

	// Listing shows it; the log holds request, approval and use.
	l, err := bob.c.Logical().List(m + "/requests")
	if err != nil || l == nil || len(l.Data["keys"].([]interface{})) != 1 {
		t.Fatalf("list requests: %v %v", l, err)
	}
	types := logTypes(t, m)
	for _, want := range []string{"request.created", "request.approved", "request.used", "key.issued"} {
		if !types[want] {
			t.Fatalf("lifecycle log lacks %s: %v", want, types)
		}
	}
}

// logTypes returns the set of event types in a mount's lifecycle log.
func logTypes(t *testing.T, m string) map[string]bool {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range s.Data["entries"].([]interface{}) {
		out[e.(map[string]interface{})["type"].(string)] = true
	}
	return out
}
