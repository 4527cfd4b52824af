package governance

import (
	"reflect"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Counts of clients outside the list go to _other, whether they arrive
// unlisted or the list shrinks later; the reserved labels always stay.
func TestVerifyByClientStaysWithinTheList(t *testing.T) {
	var v VerifyByClient
	v.Add([]string{"a", "b"}, "a", "active", 2)
	v.Add([]string{"a", "b"}, "b", "revoked", 1)
	v.Add([]string{"a", "b"}, "zz", "active", 5) // labelled under an older list
	v.Add([]string{"a", "b"}, record.MetricsClientNone, "not_found", 3)
	v.Keep([]string{"a"})
	want := VerifyByClient{
		"a":                       {"active": 2},
		record.MetricsClientOther: {"active": 5, "revoked": 1},
		record.MetricsClientNone:  {"not_found": 3},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("counts = %v, want %v", v, want)
	}
}
