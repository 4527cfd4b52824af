package ha

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// rotationDeadline bounds waiting for the first scheduled rotation after a
// failover. The new leader's rollback manager runs the plugin's periodic
// function a minute after the node became active and every minute after
// that, so a key due a minute after issue rotates about a minute after the
// failover.
const rotationDeadline = 150 * time.Second

// TestRotationAfterFailover: a key under a role rotating every minute (the
// smallest rotation_period a role accepts) is issued on one leader, which
// then steps down. The new leader rotates it by itself, and it is rotated
// exactly once for that scheduled time: the old leader, now a standby, has
// no backend (no plugin process) that could rotate it again, and the
// lifecycle log shows a single key.rotated entry, by actor system.
//
// The test waits out a whole periodic cycle after the scheduled time, so a
// second rotation by any other node would be seen. It spends that wait
// paused (t.Parallel) while the package's other tests run; their failovers
// cannot make a second rotation legitimate sooner, since each rotation
// schedules the next a full period later.
func TestRotationAfterFailover(t *testing.T) {
	m := newMount(t)
	a := waitActive(t)
	ca := node(t, a)
	setupClient(t, ca, m, "svc")
	write(t, ca, m+"/roles/fast", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod",
		"rotation_period": "1m", "grace_period": "30s", "max_grace_period": "30s",
	})
	s := write(t, ca, m+"/keys/svc/main", map[string]interface{}{"role": "fast"})
	old := s.Data["key"].(string)
	scheduled := parseTime(t, s.Data["next_rotation_at"])
	if p := num(t, s.Data["rotation_period"]); p != 60 {
		t.Fatalf("rotation_period = %d, want 60", p)
	}
	requirePluginOnlyOn(t, a)

	b := stepDown(t, a)
	failover := time.Now()
	// Background work only where Vault allows writes: the old leader tore
	// its mount down, so only the new leader runs the plugin.
	requirePluginOnlyOn(t, b)

	cb := node(t, b)
	s = waitForVersion(t, cb, m+"/keys/svc/main", 2, rotationDeadline)
	t.Logf("rotated by the new leader %v after the failover (%v after the scheduled time)",
		time.Since(failover).Round(time.Second), time.Since(scheduled).Round(time.Second))
	requireActive(t, b) // no other leader since the failover: b rotated it
	requirePluginOnlyOn(t, b)
	if n := len(s.Data["versions"].([]interface{})); n != 2 {
		t.Fatalf("key has %d versions after one rotation, want 2: %v", n, s.Data["versions"])
	}
	cur := s.Data["key"].(string)
	if cur == old {
		t.Fatal("rotation kept the same secret")
	}
	rotated := keyEvents(logEntries(t, cb, m), "key.rotated", "svc", "main")
	if len(rotated) != 1 || num(t, rotated[0]["version"]) != 2 || actorType(rotated[0]) != "system" {
		t.Fatalf("key.rotated entries after the rotation: %v", rotated)
	}
	// Log times are shown to the second.
	if at := eventTime(t, rotated[0]); at.Before(failover.Truncate(time.Second)) || at.Before(scheduled) {
		t.Fatalf("rotated at %v: before the failover (%v) or the scheduled time (%v)", at, failover, scheduled)
	}
	// The grace overlap holds on the new leader: both versions verify.
	expectVerify(t, cb, m, cur, nil, true, "")
	expectVerify(t, cb, m, old, nil, true, "")

	t.Parallel() // wait out the rest of the cycle while the other tests run

	// Any node holding a backend runs the periodic function once a minute,
	// so a duplicate rotation for this scheduled time would have happened
	// before scheduled+1m; a legitimate next rotation comes no earlier.
	// The key must always have an accepted version.
	windowEnd := scheduled.Add(time.Minute + 5*time.Second)
	for time.Now().Before(windowEnd) {
		c := node(t, waitActive(t))
		if active, code := verify(t, c, m, cur, nil); !active {
			t.Fatalf("current version refused while waiting: %s", code)
		}
		time.Sleep(time.Second) // polling, not timing
	}
	c := node(t, waitActive(t))
	entries := logEntries(t, c, m)
	rotated = keyEvents(entries, "key.rotated", "svc", "main")
	if p := rotationProblem(rotated, scheduled, time.Minute); p != "" {
		t.Fatalf("%s: %v", p, rotated)
	}
	// Grace is over: the old version is refused, the new one accepted.
	expectVerify(t, c, m, old, nil, false, "expired")
	expectVerify(t, c, m, cur, nil, true, "")
	requireLogValid(t, c, m, len(entries), entries[len(entries)-1]["hash"].(string))
}

// rotationProblem checks a key's key.rotated log entries: exactly one for
// the first scheduled time (before first+period), versions 2, 3, ... each
// once, all by actor system, and consecutive rotations at least a period
// apart (each rotation schedules the next a period later, so two closer
// together rotated one scheduled time twice). It returns "" when they are
// right, else what is wrong.
func rotationProblem(rotated []map[string]interface{}, first time.Time, period time.Duration) string {
	sorted := append([]map[string]interface{}(nil), rotated...)
	seq := func(e map[string]interface{}) int64 {
		n, _ := strconv.ParseInt(fmt.Sprint(e["seq"]), 10, 64)
		return n
	}
	sort.Slice(sorted, func(i, j int) bool { return seq(sorted[i]) < seq(sorted[j]) })
	inFirst := 0
	var prev time.Time
	for i, e := range sorted {
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["time"]))
		if err != nil {
			return fmt.Sprintf("rotation %d has no time: %v", i+1, e)
		}
		if v := fmt.Sprint(e["version"]); v != strconv.Itoa(i+2) || actorType(e) != "system" {
			return fmt.Sprintf("rotation %d made version %s by %s, want version %d by system", i+1, v, actorType(e), i+2)
		}
		if at.Before(first.Add(period)) {
			inFirst++
		}
		// A rotation is logged a moment after the time it took as
		// "now" for scheduling the next, hence the second of slack.
		if i > 0 && at.Sub(prev) < period-time.Second {
			return fmt.Sprintf("rotations %d and %d only %v apart (period %v): one scheduled time rotated twice", i, i+1, at.Sub(prev), period)
		}
		prev = at
	}
	if inFirst != 1 {
		return fmt.Sprintf("%d rotations for the scheduled time %v, want 1", inFirst, first.Format(time.RFC3339))
	}
	return ""
}

// waitForVersion polls the key through c until its current version is at
// least want.
func waitForVersion(t *testing.T, c *api.Client, path string, want int64, deadline time.Duration) *api.Secret {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		s, err := c.Logical().ReadWithContext(context.Background(), path)
		if err == nil && s != nil && num(t, s.Data["version"]) >= want {
			return s
		}
		if time.Now().After(end) {
			t.Fatalf("key %s did not reach version %d within %v (last: %v, err %v)", path, want, deadline, s, err)
		}
		time.Sleep(time.Second) // polling, not timing
	}
}
