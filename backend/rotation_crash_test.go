package backend

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// restartBackend is what Vault does after the plugin process died: a new
// backend instance over the same storage.
func (r *rotEnv) restartBackend() *apikeysBackend {
	r.t.Helper()
	b2 := newBackend(r.clock, r.opts...)
	if err := b2.Setup(r.ctx, &logical.BackendConfig{Logger: r.b.logger, System: logical.TestSystemView(), StorageView: r.storage}); err != nil {
		r.t.Fatal(err)
	}
	if err := b2.Initialize(r.ctx, &logical.InitializationRequest{Storage: r.storage}); err != nil {
		r.t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return b2
}

// rollbackWALs runs the WAL rollback on every WAL entry, as Vault's rollback
// manager does for entries older than WALRollbackMinAge. (The framework
// judges age by the entry's real creation time, so the test calls the
// rollback directly instead of waiting two minutes.)
func (r *rotEnv) rollbackWALs(b *apikeysBackend) int {
	r.t.Helper()
	ids, err := framework.ListWAL(r.ctx, r.storage)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(r.ctx, r.storage, id)
		if err != nil || entry == nil {
			r.t.Fatalf("WAL %s: %v", id, err)
		}
		if err := b.walRollback(r.ctx, &logical.Request{Storage: r.storage}, entry.Kind, entry.Data); err != nil {
			r.t.Fatalf("rollback of WAL %s: %v", id, err)
		}
		if err := framework.DeleteWAL(r.ctx, r.storage, id); err != nil {
			r.t.Fatal(err)
		}
	}
	return len(ids)
}

// checkConsistent asserts the crash-safety invariants for a key: it has a
// version verify accepts; every index entry points at a version the key
// record holds with that HMAC (no orphans); every version the record holds
// is indexed.
func (r *rotEnv) checkConsistent(client, name string) *record.Key {
	r.t.Helper()
	k := r.key(client, name)
	accepted := 0
	for _, v := range k.Versions {
		if versionAccepted(v, r.clock.Now(), false) {
			accepted++
		}
		ie, err := r.b.getIndex(r.ctx, r.storage, v.HMAC)
		if err != nil || ie == nil || ie.Version != v.Version || ie.KeyID != k.KeyID {
			r.t.Fatalf("version %d is not indexed correctly: %+v %v", v.Version, ie, err)
		}
	}
	if accepted == 0 {
		r.t.Fatalf("key %s/%s has no accepted version: %s", client, name, states(k))
	}
	for _, sk := range r.storageKeys() {
		if !strings.HasPrefix(sk, storageIndexPrefix) {
			continue
		}
		h := strings.TrimPrefix(sk, storageIndexPrefix)
		ie, err := r.b.getIndex(r.ctx, r.storage, h)
		if err != nil || ie == nil {
			r.t.Fatalf("index %s: %v", h, err)
		}
		owner := r.key(ie.Client, ie.Name)
		if v := owner.Version(ie.Version); v == nil || v.HMAC != h {
			r.t.Fatalf("orphan index entry for %s/%s version %d", ie.Client, ie.Name, ie.Version)
		}
	}
	return k
}

// acceptsPlaintext checks, as verify does, that a presented key resolves
// through the index to an accepted version of the key record.
func (r *rotEnv) acceptsPlaintext(plaintext string) bool {
	r.t.Helper()
	secret, err := r.b.hmacSecret(r.ctx, r.storage)
	if err != nil {
		r.t.Fatal(err)
	}
	h := keyHMAC(secret, plaintext)
	ie, err := r.b.getIndex(r.ctx, r.storage, h)
	if err != nil || ie == nil {
		return false
	}
	k, err := r.b.getKey(r.ctx, r.storage, ie.Client, ie.Name)
	if err != nil || k == nil {
		return false
	}
	v := k.Version(ie.Version)
	return v != nil && v.HMAC == h && versionAccepted(v, r.clock.Now(), false)
}

// TestRotationCrashAtEachStep injects a failure between each step of a
// scheduled rotation's commit (as if the plugin died there), restarts the
// backend, runs the WAL rollback, and shows the key is in the old or the
// new state with no orphan index entry, the old key still accepted, and
// the next tick finishing the job.
func TestRotationCrashAtEachStep(t *testing.T) {
	cases := []struct {
		step      string
		wantAfter string // versions right after the crash and rollback
		orphan    bool   // the crash leaves an index entry the rollback removes
	}{
		{"wal", "1:active", false},
		{"index", "1:active", true},
		{"key", "1:previous 2:active", false},
	}
	for _, tc := range cases {
		t.Run(tc.step, func(t *testing.T) {
			r := newRotEnv(t)
			r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
			old := r.issue("svc", "main", "r")
			indexBefore := countPrefix(r.storageKeys(), storageIndexPrefix)

			r.clock.Advance(time.Hour)
			r.b.commitHook = func(step string) error {
				if step == tc.step {
					return errors.New("simulated crash after " + step)
				}
				return nil
			}
			st, err := r.b.runRotationTick(r.ctx, r.storage)
			if err == nil || st.failed != 1 || !strings.Contains(err.Error(), "simulated crash") {
				t.Fatalf("tick with crash: %+v %v", st, err)
			}
			if got := countPrefix(r.storageKeys(), storageIndexPrefix) - indexBefore; (got == 1) != (tc.orphan || tc.step == "key") {
				t.Fatalf("%d new index entries after crash at %s", got, tc.step)
			}

			// The restarted backend settles the interrupted change when
			// it starts, not when Vault's rollback gets to it minutes
			// later.
			r.b = r.restartBackend()
			if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 0 {
				t.Fatalf("%d WAL entries left after the restart, want 0", len(ids))
			}
			k := r.checkConsistent("svc", "main")
			if got := states(k); got != tc.wantAfter {
				t.Fatalf("after crash and rollback: %q, want %q", got, tc.wantAfter)
			}
			if !r.acceptsPlaintext(old) {
				t.Fatal("the old key is not accepted after the crash")
			}
			if res, err := r.b.verifyKey(r.ctx, r.storage, record.VerifyInput{Key: old}); err != nil || !res.Active {
				t.Fatalf("verify of the old key after the crash: %+v %v", res.Code, err)
			}

			// The engine converges: an interrupted rotation is retried,
			// a completed one is not repeated.
			r.clock.Advance(retryAfterError)
			if _, err := r.b.runRotationTick(r.ctx, r.storage); err != nil {
				t.Fatal(err)
			}
			k = r.checkConsistent("svc", "main")
			if got := states(k); got != "1:previous 2:active" {
				t.Fatalf("after recovery tick: %q", got)
			}
			if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 0 {
				t.Fatalf("WAL entries left: %v", ids)
			}
			if !r.acceptsPlaintext(old) {
				t.Fatal("the old key is not accepted during grace after recovery")
			}
			cur := r.ok(logical.ReadOperation, "keys/svc/main", nil).Data["key"].(string)
			if !r.acceptsPlaintext(cur) {
				t.Fatal("the new key is not accepted after recovery")
			}
			for _, key := range []string{old, cur} {
				if res, err := r.b.verifyKey(r.ctx, r.storage, record.VerifyInput{Key: key}); err != nil || !res.Active {
					t.Fatalf("verify after recovery: %+v %v", res.Code, err)
				}
			}
		})
	}
}

func countPrefix(keys []string, prefix string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// TestRotationWithGraceEndIsOneCommit covers a tick where a previous
// version's grace ends and the next scheduled rotation is due at once: the
// retirement and the new version are stored in a single commit, so a crash
// at any step leaves the old state or the new one, and the log records the
// retirement before the rotation.
func TestRotationWithGraceEndIsOneCommit(t *testing.T) {
	// "key" is after the key write, "log" after the first of the two log
	// entries: the change happened, and recovery appends what is missing.
	for _, crashAt := range []string{"", "wal", "index", "key", "log"} {
		t.Run("crash="+crashAt, func(t *testing.T) {
			r := newRotEnv(t)
			r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
			old := r.issue("svc", "main", "r")
			r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
			r.seen["svc/main/2"] = r.clock.Now() // the client adopted version 2
			logBefore := len(r.logTypes())

			// No tick ran for an hour: v1's grace has ended and v2 is due.
			r.clock.Advance(time.Hour)
			keyWrites := 0
			r.b.commitHook = func(step string) error {
				if step == "key" {
					keyWrites++
				}
				if step == crashAt {
					crashAt = "done" // crash once
					return errors.New("simulated crash after " + step)
				}
				return nil
			}
			crashed := crashAt != ""
			_, err := r.b.runRotationTick(r.ctx, r.storage)
			if crashed {
				if err == nil {
					t.Fatal("the tick did not fail at the crash")
				}
				r.b = r.restartBackend()
				r.rollbackWALs(r.b)
				k := r.checkConsistent("svc", "main")
				if got := states(k); got != "1:previous 2:active" && got != "1:retired 2:previous 3:active" {
					t.Fatalf("after crash and rollback: %q is neither the old nor the new state", got)
				}
				r.clock.Advance(retryAfterError)
				if _, err := r.b.runRotationTick(r.ctx, r.storage); err != nil {
					t.Fatal(err)
				}
			} else if err != nil || keyWrites != 1 {
				t.Fatalf("tick: %v, with %d key record writes, want 1", err, keyWrites)
			}
			if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 0 {
				t.Fatalf("WAL entries left: %v", ids)
			}
			k := r.checkConsistent("svc", "main")
			if got := states(k); got != "1:retired 2:previous 3:active" {
				t.Fatalf("after the tick: %q", got)
			}
			if r.acceptsPlaintext(old) {
				t.Fatal("the retired key is still accepted")
			}
			var tail []string
			for _, typ := range r.logTypes()[logBefore:] {
				if typ == eventlog.KeyRetired || typ == eventlog.KeyRotated {
					tail = append(tail, typ)
				}
			}
			if strings.Join(tail, ",") != eventlog.KeyRetired+","+eventlog.KeyRotated {
				t.Fatalf("log after the tick: %v, want one retirement then one rotation", tail)
			}
			if res, err := r.b.log.Verify(r.ctx, r.storage); err != nil || !res.Valid {
				t.Fatalf("log/verify after recovery: %+v %v", res, err)
			}
		})
	}
}

// TestInterruptedCommitFinishedByNextChange: when a rotation is cut off
// after its key write and the key changes again before Vault's WAL rollback
// runs (minutes later), the next change first finishes the interrupted one,
// so its log entry is appended once and nothing is rolled back wrongly.
func TestInterruptedCommitFinishedByNextChange(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	r.issue("svc", "main", "r")
	r.clock.Advance(time.Hour)
	r.b.commitHook = func(step string) error {
		if step == "key" {
			return errors.New("simulated crash after key")
		}
		return nil
	}
	if _, err := r.b.runRotationTick(r.ctx, r.storage); err == nil {
		t.Fatal("the tick did not fail at the crash")
	}
	r.b = r.restartBackend()
	// An operator revokes version 1 right after the restart.
	r.ok(logical.UpdateOperation, "keys/svc/main/revoke", map[string]interface{}{"version": 1, "reason": "rotated by mistake"})
	var got []string
	for _, ev := range r.events(eventlog.KeyRotated, eventlog.KeyRevoked) {
		got = append(got, ev.Type)
	}
	if strings.Join(got, ",") != eventlog.KeyRotated+","+eventlog.KeyRevoked {
		t.Fatalf("log: %v, want the interrupted rotation then the revocation", got)
	}
	if ids, _ := framework.ListWAL(r.ctx, r.storage); len(ids) != 0 {
		t.Fatalf("WAL entries left: %v", ids)
	}
	r.checkConsistent("svc", "main")
	r.wantStates("svc", "main", "1:revoked 2:active")
}
