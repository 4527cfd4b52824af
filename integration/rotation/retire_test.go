package rotation

import (
	"fmt"
	"testing"
	"time"
)

// keyRoleSetup creates client svc and role r with the given rotation
// settings and issues keys/svc/main; it returns the plaintext.
func keyRoleSetup(t *testing.T, m string, role map[string]interface{}) string {
	t.Helper()
	write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	role["scopes"], role["environment"] = "orders:read", "prod"
	write(t, m+"/roles/r", role)
	return write(t, m+"/keys/svc/main", map[string]interface{}{"role": "r"}).Data["key"].(string)
}

// TestQuickManualRotationsLogRetirement: rotating twice within the grace
// retires version 1 at once (verify answers expired), and the log says so;
// it had no key.retired entry for it.
func TestQuickManualRotationsLogRetirement(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	v1 := keyRoleSetup(t, m, map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	write(t, m+"/keys/svc/main/rotate", nil)
	write(t, m+"/keys/svc/main/rotate", nil)
	if active, code := verify(t, m, v1); active || code != "expired" {
		t.Fatalf("version 1 after two rotations: active=%v code=%s, want expired", active, code)
	}
	s := read(t, m+"/keys/svc/main")
	if versionState(t, s, 1) != "retired" || versionState(t, s, 2) != "previous" {
		t.Fatalf("versions: %v", s.Data["versions"])
	}
	var retired []string
	for _, e := range logEntries(t, m, "key.retired") {
		retired = append(retired, fmt.Sprint(e["version"]))
	}
	if fmt.Sprint(retired) != "[1]" {
		t.Fatalf("key.retired entries for versions %v, want [1]", retired)
	}
	if s, err := client(t).Logical().Read(m + "/log/verify"); err != nil || s.Data["valid"] != true {
		t.Fatalf("log chain does not verify: %v %v", s, err)
	}
}

// TestAdoptionDeferredWithShortGrace: with a 30 s grace (shorter than the
// periodic tick's minute) and only the old version in use, the tick that
// would retire it defers the retirement, logs key.retirement_deferred and
// raises rotation_not_adopted; before, no tick fell inside the window
// where the decision was taken, so the old version was just retired.
func TestAdoptionDeferredWithShortGrace(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	v1 := keyRoleSetup(t, m, map[string]interface{}{"rotation_period": "1h", "grace_period": "30s", "max_grace_period": "10m"})
	write(t, m+"/keys/svc/main/rotate", nil)
	// The application keeps using version 1 only. It is seen late in the
	// grace, so a tick in the old lookahead window (the last 15 s) would
	// most likely not have seen it yet either: only a decision at
	// retirement time defers.
	time.Sleep(24 * time.Second)
	if active, code := verify(t, m, v1); !active {
		t.Fatalf("version 1 refused during its grace: %s", code)
	}
	deadline := time.Now().Add(150 * time.Second)
	for len(logEntries(t, m, "key.retirement_deferred")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no key.retirement_deferred within 150s; versions %v", read(t, m+"/keys/svc/main").Data["versions"])
		}
		time.Sleep(2 * time.Second)
	}
	if versionState(t, read(t, m+"/keys/svc/main"), 1) != "previous" {
		t.Fatal("version 1 not kept after the deferral")
	}
	if active, code := verify(t, m, v1); !active {
		t.Fatalf("version 1 refused after the deferral: %s", code)
	}
	found := false
	for _, e := range logEntries(t, m, "alert.raised") {
		d, _ := e["details"].(map[string]interface{})
		found = found || fmt.Sprint(d["type"]) == "rotation_not_adopted"
	}
	if !found {
		t.Fatal("no rotation_not_adopted alert logged")
	}
}

// TestRotationPeriodChangeReschedules: a key issued under a 30-day period
// kept its next rotation 30 days out after its role was changed to rotate
// every minute; now it is rescheduled from its last rotation and rotates
// by itself at the next tick.
func TestRotationPeriodChangeReschedules(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	keyRoleSetup(t, m, map[string]interface{}{"rotation_period": "720h", "grace_period": "30s"})
	issued := read(t, m+"/keys/svc/main")
	created, err := time.Parse(time.RFC3339Nano, fmt.Sprint(issued.Data["created_at"]))
	if err != nil {
		t.Fatalf("created_at %v: %v", issued.Data["created_at"], err)
	}
	write(t, m+"/roles/r", map[string]interface{}{"rotation_period": "1m"})
	// The keys are rescheduled in the background, at once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := read(t, m+"/keys/svc/main")
		next, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["next_rotation_at"]))
		if next.Sub(created) == time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("next_rotation_at %v, want created_at %v + 1m", s.Data["next_rotation_at"], created)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitForVersion(t, m+"/keys/svc/main", 2, rotationDeadline)
}
