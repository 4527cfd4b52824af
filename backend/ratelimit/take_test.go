package ratelimit

import (
	"testing"
	"time"
)

// A refused verify spends no budget; the state is the tightest budget; the
// retry is when every used-up budget renews.
func TestTakeAllOrNothing(t *testing.T) {
	r := New()
	key := Budget{ID: "kid", Limit: 5, Window: time.Minute}
	client := Budget{ID: ClientBudget("svc"), Limit: 2, Window: 30 * time.Second}
	st, _, ok := r.Take([]Budget{key, client}, testStart)
	if !ok || st.Limit != 2 || st.Remaining != 1 || !st.Reset.Equal(testStart.Add(30*time.Second)) {
		t.Fatalf("first: %+v %v", st, ok)
	}
	r.Take([]Budget{key, client}, testStart)
	st, retry, ok := r.Take([]Budget{key, client}, testStart.Add(10*time.Second))
	if ok || st.Remaining != 0 || retry != 20*time.Second {
		t.Fatalf("over the client's budget: %+v %v %s", st, ok, retry)
	}
	if r.windows["kid"].count != 2 {
		t.Fatalf("a refused verify spent the key's budget: %d", r.windows["kid"].count)
	}
	st, _, ok = r.Take([]Budget{key}, testStart.Add(10*time.Second))
	if !ok || st.Limit != 5 || st.Remaining != 2 {
		t.Fatalf("key alone: %+v %v", st, ok)
	}
	if _, _, ok := r.Take(nil, testStart); !ok {
		t.Fatal("no budget refused")
	}
}
