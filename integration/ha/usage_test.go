package ha

import "testing"

// TestUsageSurvivesStepDown: a verify answered by the active node is kept in
// memory until the periodic flush; when the node steps down first, the
// mount's Clean flushes it, so the new active node knows the key was used
// (its idle sweep and adoption checks depend on that).
func TestUsageSurvivesStepDown(t *testing.T) {
	m := newMount(t)
	a := waitActive(t)
	ca := node(t, a)
	setupClient(t, ca, m, "u1")
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	key := issue(t, ca, m, "u1", "k", "r")
	expectVerify(t, ca, m, key, nil, true, "")
	b := stepDown(t, a)
	got := read(t, node(t, b), m+"/keys/u1/k").Data
	if got["last_used_at"] == nil {
		t.Fatalf("the new active node does not know the key was used before the step-down: last_used_at=%v usage=%v", got["last_used_at"], got["usage"])
	}
}
