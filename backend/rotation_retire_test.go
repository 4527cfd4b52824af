package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestAdoptionDecidedWithShortGraces: with a grace of 30 s or 1 m no tick
// may fall inside the window before the grace ends (ticks run about once a
// minute), and the version still in sole use was retired without a
// key.retirement_deferred entry or a rotation_not_adopted alert. The tick
// that would retire it decides instead.
func TestAdoptionDecidedWithShortGraces(t *testing.T) {
	for _, grace := range []time.Duration{30 * time.Second, time.Minute} {
		for _, tickAt := range []time.Duration{grace, grace + 10*time.Second, grace + 59*time.Second} {
			t.Run(fmt.Sprintf("grace=%v/tick=%v", grace, tickAt), func(t *testing.T) {
				r := newRotEnv(t)
				r.setupClientRole("svc", "internal", "r", map[string]interface{}{
					"rotation_period": "1h", "grace_period": grace.String(), "max_grace_period": "5m",
				})
				r.issue("svc", "k", "r")
				r.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
				rotatedAt := r.clock.Now()
				// The client keeps using version 1 only.
				r.clock.Advance(5 * time.Second)
				r.verified("svc", "k", 1)
				r.clock.Set(rotatedAt.Add(tickAt))
				if st := r.tick(); st.deferred != 1 || st.retired != 0 {
					t.Fatalf("tick at +%v: %+v, want the retirement deferred", tickAt, st)
				}
				k := r.wantStates("svc", "k", "1:previous 2:active")
				if !versionAccepted(k.Versions[0], r.clock.Now(), false) {
					t.Fatal("version 1 not accepted after the deferral")
				}
				waits, alerts := r.events(eventlog.KeyRetirementDeferred), r.events(eventlog.AlertRaised)
				if len(waits) != 1 || waits[0].Version != 1 {
					t.Fatalf("key.retirement_deferred entries: %+v", waits)
				}
				if len(alerts) != 1 || alerts[0].Details["type"] != record.AlertRotationNotAdopted {
					t.Fatalf("alerts: %+v", alerts)
				}
				// Never adopted: retired at max_grace_period, logged once.
				for i := 0; i < 10; i++ {
					r.clock.Advance(time.Minute)
					r.verified("svc", "k", 1)
					r.tick()
				}
				k = r.wantStates("svc", "k", "1:retired 2:active")
				if got := k.Versions[0].RetiredAt.Sub(rotatedAt); got < 5*time.Minute || got > 6*time.Minute {
					t.Fatalf("retired %v after the rotation, want at max_grace_period", got)
				}
				if n := len(r.events(eventlog.AlertRaised)); n != 1 {
					t.Fatalf("%d alerts, want 1", n)
				}
			})
		}
	}
}

// retiredLogged asserts that every retired version of the key has exactly
// one key.retired entry, and returns the entries' reasons by version.
func (r *rotEnv) retiredLogged(client, name string) map[int]string {
	r.t.Helper()
	k := r.key(client, name)
	reasons := map[int]string{}
	for _, ev := range r.events(eventlog.KeyRetired) {
		if ev.Client != client || ev.Key != name {
			continue
		}
		if _, dup := reasons[ev.Version]; dup {
			r.t.Fatalf("version %d retired twice in the log", ev.Version)
		}
		reasons[ev.Version] = ev.Details["reason"]
	}
	for _, v := range k.Versions {
		if _, ok := reasons[v.Version]; (v.State == record.StateRetired) != ok {
			r.t.Fatalf("version %d is %s, key.retired logged: %v (states %s)", v.Version, v.State, ok, states(k))
		}
	}
	return reasons
}

// TestEveryRetirementIsLogged: rotate, promote, rollback, the tick and the
// hard expiry each log key.retired for every version they retire, in the
// commit that retires it. Rotating twice within the grace retired version
// 1 early without any entry.
func TestEveryRetirementIsLogged(t *testing.T) {
	rotate := func(r *rotEnv) { r.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil) }
	cases := map[string]struct {
		role    map[string]interface{}
		steps   func(r *rotEnv)
		version int
		reason  string
	}{
		"rotate twice within the grace": {
			steps:   func(r *rotEnv) { rotate(r); r.clock.Advance(time.Second); rotate(r) },
			version: 1, reason: record.RetiredEarly,
		},
		"promote within the grace": {
			steps: func(r *rotEnv) {
				rotate(r)
				r.ok(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true})
				r.ok(logical.UpdateOperation, "keys/svc/k/promote", nil)
			},
			version: 1, reason: record.RetiredEarly,
		},
		"rotate without grace": {
			role:    map[string]interface{}{"grace_period": "0s"},
			steps:   rotate,
			version: 1, reason: record.RetiredNoGrace,
		},
		"rollback without grace": {
			role: map[string]interface{}{"grace_period": "1m"},
			steps: func(r *rotEnv) {
				rotate(r)
				r.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"grace_period": "0s"})
				r.ok(logical.UpdateOperation, "keys/svc/k/rollback", nil)
			},
			version: 2, reason: record.RetiredNoGrace,
		},
		"tick at the end of the grace": {
			steps:   func(r *rotEnv) { rotate(r); r.clock.Advance(2 * time.Hour); r.tick() },
			version: 1, reason: record.RetiredGraceEnded,
		},
		"hard expiry during the grace": {
			role: map[string]interface{}{"key_lifetime": "2h"},
			steps: func(r *rotEnv) {
				r.clock.Advance(90 * time.Minute)
				rotate(r)
				r.clock.Advance(31 * time.Minute)
				r.tick()
			},
			version: 1, reason: record.RetiredExpired,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := newRotEnv(t)
			role := map[string]interface{}{"rotation_period": "720h", "grace_period": "1h"}
			for k, v := range tc.role {
				role[k] = v
			}
			r.setupClientRole("svc", "internal", "r", role)
			r.issue("svc", "k", "r")
			tc.steps(r)
			reasons := r.retiredLogged("svc", "k")
			if reasons[tc.version] != tc.reason {
				t.Fatalf("key.retired of version %d: reason %q, want %q (all: %v)", tc.version, reasons[tc.version], tc.reason, reasons)
			}
		})
	}
}

// TestRotationPolicyChangeReschedulesKeys: a key issued under a 90-day
// period kept its next rotation 90 days out after its role was changed to
// rotate every 10 minutes.
func TestRotationPolicyChangeReschedulesKeys(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "2160h", "grace_period": "1m"})
	r.issue("svc", "k", "r")
	r.issue("svc", "other", "r")
	r.ok(logical.UpdateOperation, "keys/svc/other/revoke", nil)
	r.clock.Advance(3 * time.Minute)
	r.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"rotation_period": "10m"})
	r.b.rot.reschedules.Wait()
	k := r.key("svc", "k")
	if want := testStart.Add(10 * time.Minute); !k.NextRotationAt.Equal(want) {
		t.Fatalf("next rotation %v, want %v (last rotation + the new period)", k.NextRotationAt, want)
	}
	r.runUntil(testStart.Add(10 * time.Minute))
	r.wantStates("svc", "k", "1:previous 2:active")
	// A cron schedule replaces the period: the next time it names after
	// the last rotation.
	r.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"rotation_period": "0s", "rotation_schedule": "0 3 * * *"})
	r.b.rot.reschedules.Wait()
	k = r.key("svc", "k")
	if want := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC); !k.NextRotationAt.Equal(want) {
		t.Fatalf("next rotation %v, want %v", k.NextRotationAt, want)
	}
	if d, ok := r.b.sched.rotation.Due(queueID("svc", "k")); !ok || d.After(k.NextRotationAt) {
		t.Fatalf("queued for %v (%v), want by %v", d, ok, k.NextRotationAt)
	}
	// Writing the role without changing its policy leaves keys alone.
	r.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"description": "x"})
	r.b.rot.reschedules.Wait()
	if got := r.key("svc", "k").NextRotationAt; !got.Equal(k.NextRotationAt) {
		t.Fatalf("next rotation moved to %v", got)
	}
	if other := r.key("svc", "other"); !other.NextRotationAt.IsZero() {
		t.Fatalf("revoked key rescheduled to %v", other.NextRotationAt)
	}
}

// TestRiskTierChangeReschedulesKeys: a role on a risk tier follows a change
// of that tier's period in config.
func TestRiskTierChangeReschedulesKeys(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"risk_tier": "high", "grace_period": "1h"})
	r.issue("svc", "k", "r")
	r.ok(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": []string{"low=180d", "medium=90d", "high=2d", "critical=7d"}})
	r.b.rot.reschedules.Wait()
	if got, want := r.key("svc", "k").NextRotationAt, testStart.Add(48*time.Hour); !got.Equal(want) {
		t.Fatalf("next rotation %v, want %v", got, want)
	}
}
