package record

import (
	"slices"
	"testing"
)

// Every outcome is listed once; every refusal says why; every alert it
// raises is a known alert type.
func TestOutcomesTable(t *testing.T) {
	codes := []string{
		CodeNotFound, CodeMalformed, CodeExpired, CodeRevoked, CodeLocked, CodeForbiddenScope,
		CodeForbiddenAudience, CodeForbiddenEnvironment, CodeForbiddenIP, CodeRateLimited, CodeDisabled,
	}
	if len(Outcomes) != len(codes)+1 || Outcomes[0].Code != OutcomeActive {
		t.Fatalf("Outcomes has %d entries starting with %q, want active and %d codes", len(Outcomes), Outcomes[0].Code, len(codes))
	}
	for _, c := range codes {
		i := OutcomeIndex(c)
		if i < 0 {
			t.Fatalf("code %s is not in Outcomes", c)
		}
		if Outcomes[i].Refusal == "" || RefusalReason(c) != Outcomes[i].Refusal {
			t.Errorf("code %s: refusal %q", c, RefusalReason(c))
		}
		if a := AlertTypeOf(c); a != "" && !slices.Contains(AlertTypes, a) {
			t.Errorf("code %s raises unknown alert type %q", c, a)
		}
	}
	if OutcomeIndex("no_such_code") != -1 || RefusalReason("no_such_code") == "" || AlertTypeOf("no_such_code") != "" {
		t.Fatal("an unknown code must have no index and no alert, and a generic refusal")
	}
}
