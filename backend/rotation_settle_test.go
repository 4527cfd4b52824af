package backend

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// crashRotation runs a scheduled rotation that dies after step, as if the
// plugin process were killed there, and returns when the change started.
func (r *rotEnv) crashRotation(step string) time.Time {
	r.t.Helper()
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	r.issue("svc", "main", "r")
	r.clock.Advance(time.Hour)
	at := r.clock.Now()
	r.b.commitHook = func(s string) error {
		if s == step {
			return errors.New("simulated crash after " + s)
		}
		return nil
	}
	if _, err := r.b.runRotationTick(r.ctx, r.storage); err == nil {
		r.t.Fatal("the tick did not fail at the crash")
	}
	r.b.commitHook = nil
	return at
}

// TestMountStartSettlesInterruptedCommits: a change cut off by a crash was
// finished or undone only when its WAL entry was two minutes old (Vault's
// rollback) or the key changed again; meanwhile an index entry pointed at
// a version the key did not hold, or a live version had no log entry. The
// next start of the mount settles it at once, and a log entry appended
// late says so and when the change happened.
func TestMountStartSettlesInterruptedCommits(t *testing.T) {
	t.Run("after the key write: finished", func(t *testing.T) {
		r := newRotEnv(t)
		at := r.crashRotation("key")
		r.clock.Advance(5 * time.Second) // the restart takes a moment
		r.b = r.restartBackend()
		if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 0 {
			t.Fatalf("WAL entries left after the start: %v", ids)
		}
		r.checkConsistent("svc", "main")
		rotated := r.events(eventlog.KeyRotated)
		if len(rotated) != 1 {
			t.Fatalf("%d key.rotated entries, want 1", len(rotated))
		}
		all := r.events()
		last := rotated[0]
		if last.Type != eventlog.KeyRotated || last.Details[eventlog.DetailRecovered] != "true" ||
			last.Details[eventlog.DetailOccurredAt] != at.UTC().Format(time.RFC3339Nano) || !last.Time.Equal(r.clock.Now()) {
			t.Fatalf("late entry %+v, want key.rotated recovered=true occurred_at=%s at %s", last, at, r.clock.Now())
		}
		for i := 1; i < len(all); i++ {
			if all[i].Time.Before(all[i-1].Time) {
				t.Fatalf("log out of time order at entry %d: %v after %v", i+1, all[i].Time, all[i-1].Time)
			}
		}
		if res, err := r.b.log.Verify(r.ctx, r.storage); err != nil || !res.Valid {
			t.Fatalf("log chain: %+v %v", res, err)
		}
		// Settling again (another start) logs nothing twice.
		n := len(r.events())
		r.b = r.restartBackend()
		if len(r.events()) != n {
			t.Fatal("a second start appended entries again")
		}
	})
	t.Run("before the key write: undone", func(t *testing.T) {
		r := newRotEnv(t)
		r.crashRotation("index")
		if n := countPrefix(r.storageKeys(), storageIndexPrefix); n != 2 {
			t.Fatalf("%d index entries after the crash, want 2 (one dangling)", n)
		}
		r.b = r.restartBackend()
		if n := countPrefix(r.storageKeys(), storageIndexPrefix); n != 1 {
			t.Fatalf("%d index entries after the start, want 1", n)
		}
		r.checkConsistent("svc", "main")
		r.wantStates("svc", "main", "1:active")
		if n := len(r.events(eventlog.KeyRotated)); n != 0 {
			t.Fatalf("%d key.rotated entries for a change that never happened", n)
		}
	})
	t.Run("this instance's commits are left alone", func(t *testing.T) {
		r := newRotEnv(t)
		r.crashRotation("index")
		// The same instance (its commits may still be in flight) does
		// not touch its own entries.
		if n, err := r.b.settleWALs(r.ctx, r.storage); err != nil || n != 0 {
			t.Fatalf("settled %d of this instance's entries (%v)", n, err)
		}
		if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 1 {
			t.Fatalf("WAL entries %v, want this instance's one kept", ids)
		}
	})
	t.Run("a standby leaves them to the active node", func(t *testing.T) {
		r := newRotEnv(t)
		r.crashRotation("index")
		b2 := newBackend(r.clock)
		sys := logical.TestSystemView()
		sys.ReplicationStateVal = consts.ReplicationPerformanceStandby
		if err := b2.Setup(r.ctx, &logical.BackendConfig{Logger: r.b.logger, System: sys, StorageView: r.storage}); err != nil {
			t.Fatal(err)
		}
		if err := b2.Initialize(r.ctx, &logical.InitializationRequest{Storage: r.storage}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 1 {
			t.Fatalf("WAL entries %v after a standby start, want 1", ids)
		}
	})
}
