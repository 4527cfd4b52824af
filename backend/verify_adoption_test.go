package backend

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// With a grace shorter than a tick, the version still in sole use is not
// refused between the end of its grace and the tick that defers its
// retirement: verify takes the decision the tick will take. Once the new
// version is in use, the old one is refused when its grace ends, and with
// no tick at all it is refused once the decision bound has passed.
func TestShortGraceNotRefusedBeforeTheDecidingTick(t *testing.T) {
	for _, tc := range []struct {
		name       string
		useNew     bool
		wait       time.Duration
		wantActive bool
	}{
		{"only the old version in use", false, 40 * time.Second, true},
		{"the new version in use", true, 40 * time.Second, false},
		{"no tick within the bound", false, 31*time.Second + record.RetirementDecisionBound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.setupClientRole("svc", "internal", "r", map[string]interface{}{
				"rotation_period": "1h", "grace_period": "30s", "max_grace_period": "10m",
			})
			old := e.issue("svc", "k", "r", nil)
			next := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil).Data["key"].(string)
			e.clock.Advance(5 * time.Second)
			if c := e.verifyCode(old, nil); c != "" {
				t.Fatalf("old version in its grace: %q", c)
			}
			if tc.useNew {
				if c := e.verifyCode(next, nil); c != "" {
					t.Fatalf("new version: %q", c)
				}
			}
			e.clock.Advance(tc.wait - 5*time.Second)
			if tc.wantActive {
				d := e.verify(old, nil)
				if exp, _ := d["exp"].(int64); d["active"] != true || exp <= e.clock.Now().Unix() {
					t.Fatalf("old version awaiting its deciding tick: %v (an exp in the past would make a gateway refuse it)", d)
				}
			}
			code := e.verifyCode(old, nil)
			if (code == "") != tc.wantActive {
				t.Fatalf("old version %v after the rotation: code %q, want active=%v", tc.wait, code, tc.wantActive)
			}
			if !tc.wantActive && code != record.CodeExpired {
				t.Fatalf("old version refused with %q, want %q", code, record.CodeExpired)
			}
		})
	}
}
