package record

import (
	"testing"
	"time"
)

func TestSelectorMatchesEveryFieldSet(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &Key{
		Client: "acme", Role: "svc", Owner: "team-a", Environment: "prod", Scopes: []string{"orders:read"},
		IssuedBy: Actor{EntityID: "ent-1", DisplayName: "alice"}, CreatedAt: t0,
	}
	for _, c := range []struct {
		sel  Selector
		want bool
	}{
		{Selector{All: true}, true},
		{Selector{Client: "acme", Role: "svc", Owner: "team-a", Environment: "prod", Scope: "orders:read"}, true},
		{Selector{IssuedBy: "ent-1"}, true},
		{Selector{IssuedBy: "alice"}, true},
		{Selector{IssuedBy: "bob"}, false},
		{Selector{Client: "acme", Role: "other"}, false},
		{Selector{Scope: "orders:write"}, false},
		{Selector{Environment: "staging"}, false},
		{Selector{IssuedBefore: t0}, true},
		{Selector{IssuedBefore: t0.Add(-time.Nanosecond)}, false},
		{Selector{IssuedAfter: t0}, true},
		{Selector{IssuedAfter: t0.Add(time.Nanosecond)}, false},
	} {
		if got := c.sel.Matches(k); got != c.want {
			t.Errorf("%+v matches = %v, want %v", c.sel, got, c.want)
		}
	}
	revoked := *k
	revoked.Revoked = true
	if (Selector{All: true}).Matches(&revoked) || (Selector{All: true}).Matches(nil) {
		t.Error("a revoked or missing key matched")
	}
	if !(Selector{}).Empty() || (Selector{Scope: "x"}).Empty() || (Selector{IssuedAfter: t0}).Empty() {
		t.Error("Empty is wrong")
	}
}
