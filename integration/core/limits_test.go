package core

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// A mistyped field (scope= for scopes=) on an existing role is refused
// with a 400 naming it, rather than Vault's warning with nothing changed.
func TestMistypedFieldRefused(t *testing.T) {
	m := newMount(t)
	write(t, m+"/clients/billing", map[string]interface{}{"owner": "team-pay", "type": "internal"})
	write(t, m+"/roles/orders", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	before := read(t, m+"/roles/orders").Data
	_, err := client(t).Logical().Write(m+"/roles/orders", map[string]interface{}{"scope": "orders:write"})
	expectStatus(t, err, http.StatusBadRequest, `unknown field "scope"`)
	if after := read(t, m+"/roles/orders").Data; !reflect.DeepEqual(before, after) {
		t.Fatalf("role changed:\nbefore %v\nafter  %v", before, after)
	}
	// A read with a mistyped filter is refused too, not answered unfiltered.
	_, err = client(t).Logical().ReadWithData(m+"/inventory", map[string][]string{"onwer": {"team-pay"}})
	expectStatus(t, err, http.StatusBadRequest, `unknown field "onwer"`)
	// Action paths still work with -f (no data).
	write(t, m+"/jwks/rotate", nil)
}

// An oversized value is a 400 naming the field and its limit, stores
// nothing, and the limit is in path-help.
func TestOversizedFieldRefusedAndDocumented(t *testing.T) {
	m := newMount(t)
	write(t, m+"/clients/billing", map[string]interface{}{"owner": "team-pay", "type": "internal"})
	_, err := client(t).Logical().Write(m+"/clients/billing", map[string]interface{}{"description": strings.Repeat("d", 1025)})
	expectStatus(t, err, http.StatusBadRequest, "description: at most 1024 characters")
	if d := read(t, m+"/clients/billing").Data["description"]; d != "" {
		t.Fatalf("description stored: %.40q", d)
	}
	h, err := client(t).Help(m + "/clients/billing")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.Help, "(at most 1024 characters)") {
		t.Fatalf("path-help does not state the limit:\n%s", h.Help)
	}
}
