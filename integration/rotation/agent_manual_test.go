package rotation

import (
	"strings"
	"testing"
	"time"
)

// renderedKey extracts ORDERS_API_KEY from the rendered file ("" if none).
func renderedKey(s string) string {
	_, rest, ok := strings.Cut(s, "ORDERS_API_KEY=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(key)
}

// TestAgentFollowsManualRotation: with rotation_period=10m and a 1m grace,
// Agent was told ttl≈600 and re-read only then, so after a rotation by hand
// the key it had rendered was refused (expired) for about 9 minutes. The
// ttl now never outlives the grace (less a margin): Agent renders the new
// key before the old one is refused, and the rendered key is never refused.
func TestAgentFollowsManualRotation(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	write(t, m+"/clients/checkout", map[string]interface{}{"owner": "team-pay", "type": "internal"})
	write(t, m+"/roles/manual", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod",
		"rotation_period": "10m", "grace_period": "1m", "max_grace_period": "1m",
	})
	first := write(t, m+"/keys/checkout/main", map[string]interface{}{"role": "manual"}).Data["key"].(string)
	if ttl := num(t, read(t, m+"/keys/checkout/main").Data["ttl"]); ttl < 1 || ttl > 45 {
		t.Fatalf("ttl = %d, want at most 45 (the 1m grace less its quarter)", ttl)
	}

	rendered := startAgent(t, m)
	end := time.Now().Add(30 * time.Second)
	for renderedKey(rendered()) != first {
		if time.Now().After(end) {
			t.Fatalf("agent did not render the first key within 30s; file:\n%s", rendered())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Let Agent settle into its ttl sleep, then rotate by hand.
	time.Sleep(5 * time.Second)
	second := write(t, m+"/keys/checkout/main/rotate", nil).Data["key"].(string)
	rotatedAt := time.Now()

	// Every second: the rendered key must verify; note when the file
	// switches and when the first key is refused.
	var switchedAt, refusedAt time.Time
	deadline := rotatedAt.Add(150 * time.Second)
	for switchedAt.IsZero() || refusedAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("within %v of the rotation: rendered switched at %v, first key refused at %v",
				deadline.Sub(rotatedAt), switchedAt, refusedAt)
		}
		cur := renderedKey(rendered())
		if active, code := verify(t, m, cur); !active {
			t.Fatalf("the rendered key (version %d) is refused (%s) %v after the rotation",
				map[bool]int{true: 1, false: 2}[cur == first], code, time.Since(rotatedAt).Round(time.Second))
		}
		if switchedAt.IsZero() && cur == second {
			switchedAt = time.Now()
		}
		if refusedAt.IsZero() {
			if active, _ := verify(t, m, first); !active {
				refusedAt = time.Now()
			}
		}
		time.Sleep(time.Second)
	}
	if !switchedAt.Before(refusedAt) {
		t.Fatalf("rendered the new key %v after the rotation, but the old one was refused after %v",
			switchedAt.Sub(rotatedAt).Round(time.Second), refusedAt.Sub(rotatedAt).Round(time.Second))
	}
	t.Logf("rendered the new key %v after the rotation; the old one refused after %v",
		switchedAt.Sub(rotatedAt).Round(time.Second), refusedAt.Sub(rotatedAt).Round(time.Second))
}
