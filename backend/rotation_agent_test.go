package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

func (r *rotEnv) role(name string) *record.Role {
	r.t.Helper()
	role, err := r.b.getRole(r.ctx, r.storage, name)
	if err != nil || role == nil {
		r.t.Fatalf("role %s: %v %v", name, role, err)
	}
	return role
}

func (r *rotEnv) cfg() *record.Config {
	r.t.Helper()
	cfg, err := r.b.config(r.ctx, r.storage)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// agentRead reads a key as Vault Agent does and returns the key and when
// Agent reads it again (ttl + 1 s, consul-template's leaseCheckWait).
func (r *rotEnv) agentRead(client, name string) (string, time.Time) {
	r.t.Helper()
	d := r.ok(logical.ReadOperation, "keys/"+client+"/"+name, nil).Data
	ttl := d["ttl"].(int64)
	if ttl < 1 {
		r.t.Fatalf("ttl %d: Agent would fall back to its 5 minute default", ttl)
	}
	return d["key"].(string), r.clock.Now().Add(time.Duration(ttl+1) * time.Second)
}

// runUntil advances the clock to end in steps of at most a minute, running
// a tick at each step, as Vault's periodic function does.
func (r *rotEnv) runUntil(end time.Time) {
	for r.clock.Now().Before(end) {
		step := time.Minute
		if left := end.Sub(r.clock.Now()); left < step {
			step = left
		}
		r.clock.Advance(step)
		r.tick()
	}
}

// TestAgentTTLCoversEveryRotationPath: a reader told "valid for ttl
// seconds" still holds an accepted key when it comes back for a new one,
// whichever rotation happened meanwhile and whenever it happened: by hand
// (rotate), staged and promoted, rolled back, or on the schedule. With the
// ttl counted to the next scheduled rotation only (600 s here), a manual
// rotation retired the version a reader held after the 1m grace, minutes
// before the reader looked again.
func TestAgentTTLCoversEveryRotationPath(t *testing.T) {
	paths := map[string]struct {
		before func(r *rotEnv) // runs before the read
		op     func(r *rotEnv) // the change the reader does not hear about
	}{
		"rotate": {op: func(r *rotEnv) { r.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil) }},
		"promote": {
			before: func(r *rotEnv) {
				r.ok(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true})
			},
			op: func(r *rotEnv) { r.ok(logical.UpdateOperation, "keys/svc/k/promote", nil) },
		},
		"rollback": {
			before: func(r *rotEnv) { r.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil) },
			op:     func(r *rotEnv) { r.ok(logical.UpdateOperation, "keys/svc/k/rollback", nil) },
		},
		"scheduled": {op: func(r *rotEnv) {}},
	}
	for _, grace := range []string{"30s", "1m", "5m"} {
		for name, p := range paths {
			for _, after := range []time.Duration{0, time.Second, 20 * time.Second, 44 * time.Second, 3 * time.Minute} {
				t.Run(fmt.Sprintf("%s/grace=%s/after=%v", name, grace, after), func(t *testing.T) {
					r := newRotEnv(t)
					r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "10m", "grace_period": grace})
					r.issue("svc", "k", "r")
					if name == "scheduled" {
						// Read shortly before the scheduled rotation.
						r.runUntil(testStart.Add(10*time.Minute - after))
					}
					if p.before != nil {
						p.before(r)
					}
					held, back := r.agentRead("svc", "k")
					if name != "scheduled" {
						if back.Before(r.clock.Now().Add(after)) {
							return // the reader is back before the change
						}
						r.clock.Advance(after)
						p.op(r)
					}
					// Ticks run until the reader comes back; its key must
					// be accepted the whole time.
					for r.clock.Now().Before(back) {
						if c := r.verifyCode(held, nil); c != "" {
							t.Fatalf("held key refused (%s) %v before the reader comes back; states %s",
								c, back.Sub(r.clock.Now()), states(r.key("svc", "k")))
						}
						step := 5 * time.Second
						if left := back.Sub(r.clock.Now()); left < step {
							step = left
						}
						r.clock.Advance(step)
						if r.clock.Now().Second() < 5 {
							r.tick()
						}
					}
					if c := r.verifyCode(held, nil); c != "" {
						t.Fatalf("held key refused (%s) when the reader came back; states %s", c, states(r.key("svc", "k")))
					}
				})
			}
		}
	}
}
