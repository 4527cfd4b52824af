package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// opsEnv issues n keys to each of clients "a" and "b" (role r) and returns
// their plaintexts by "<client>/<name>".
func (e *testEnv) opsEnv(n int) map[string]string {
	e.t.Helper()
	e.setupClientRole("a", "internal", "r", nil)
	e.ok(logical.CreateOperation, "clients/b", map[string]interface{}{"owner": "team-b", "type": "internal"})
	keys := map[string]string{}
	for _, c := range []string{"a", "b"} {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("k%02d", i)
			keys[c+"/"+name] = e.issue(c, name, "r", nil)
		}
	}
	return keys
}

// runOperation steps operation id until it ends and returns its record.
func (e *testEnv) runOperation(id string) *record.Operation {
	e.t.Helper()
	for i := 0; i < 1000; i++ {
		more, err := e.b.stepOperation(e.ctx, e.storage, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if !more {
			return e.operation(id)
		}
	}
	e.t.Fatal("operation did not end")
	return nil
}

func (e *testEnv) operation(id string) *record.Operation {
	e.t.Helper()
	op, err := getOperation(e.ctx, e.storage, id)
	if err != nil || op == nil {
		e.t.Fatalf("operation %s: %v", id, err)
	}
	return op
}

func TestOperationRevokeHoldsAtOnceAndRecordsReason(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.stepBudget = 3
	keys := e.opsEnv(5)
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "a", "reason": "INC-9 leak"})
	id := resp.Data["id"].(string)
	if resp.Data["state"] != record.OperationRunning {
		t.Fatalf("create: %v", resp.Data)
	}
	// Before any step: every key of a is refused, b's keys still verify.
	for p, k := range keys {
		want := ""
		if p[0] == 'a' {
			want = record.CodeRevoked
		}
		if got := e.verifyCode(k, nil); got != want {
			t.Fatalf("before the first step, %s verifies %q, want %q", p, got, want)
		}
	}
	// A key issued after the operation was accepted is not its key.
	e.clock.Advance(time.Second)
	late := e.issue("a", "late", "r", nil)
	if got := e.verifyCode(late, nil); got != "" {
		t.Fatalf("key issued after the operation: %q", got)
	}

	op := e.runOperation(id)
	if op.State != record.OperationCompleted || op.Done != 5 || op.Matched != 5 || op.Failed != 0 || op.Cursor != "" {
		t.Fatalf("ended: %+v", op)
	}
	if e.b.ops.instant.Load() != nil {
		t.Fatal("a completed operation is still applied by verify")
	}
	for i := 0; i < 5; i++ {
		k := e.issued("a", fmt.Sprintf("k%02d", i))
		if !k.Revoked || k.RevokeReason != "INC-9 leak" || k.Operation != id {
			t.Fatalf("key %s: revoked %v reason %q operation %q", k.Name, k.Revoked, k.RevokeReason, k.Operation)
		}
		if got := e.verifyCode(keys["a/"+k.Name], nil); got != record.CodeRevoked {
			t.Fatalf("after done, %s verifies %q", k.Name, got)
		}
	}
	if e.issued("a", "late").Revoked || e.issued("b", "k00").Revoked {
		t.Fatal("a key outside the selector was revoked")
	}
	revokes := e.logEventsOf(eventlog.KeyRevoked)
	if len(revokes) != 5 {
		t.Fatalf("%d key.revoked entries", len(revokes))
	}
	for _, ev := range revokes {
		if ev.RequestID != id || ev.Details["operation_id"] != id || ev.Details["reason"] != "INC-9 leak" || ev.Actor.EntityID != "entity-alice" {
			t.Fatalf("key.revoked entry: %+v", ev)
		}
	}
	started, finished := e.logEventsOf(eventlog.OperationStarted), e.logEventsOf(eventlog.OperationFinished)
	if len(started) != 1 || started[0].Details["operation_id"] != id || len(finished) != 1 || finished[0].Details["done"] != "5" {
		t.Fatalf("started %v finished %v", started, finished)
	}
	read := e.ok(logical.ReadOperation, "operations/"+id, nil)
	if read.Data["state"] != record.OperationCompleted || read.Data["done"] != 5 {
		t.Fatalf("read: %v", read.Data)
	}
	list := e.ok(logical.ListOperation, "operations", nil)
	if ids := list.Data["keys"].([]string); len(ids) != 1 || ids[0] != id {
		t.Fatalf("list: %v", list.Data)
	}
}

func TestOperationRefusesBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.opsEnv(1)
	for _, c := range []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"action": "revoke", "client": "a"}, "reason"},
		{map[string]interface{}{"action": "revoke", "reason": "x"}, "selector"},
		{map[string]interface{}{"action": "explode", "client": "a", "reason": "x"}, "action"},
		{map[string]interface{}{"action": "revoke", "all": true, "client": "a", "reason": "x"}, "all"},
		{map[string]interface{}{"action": "revoke", "issued_before": "yesterday", "reason": "x"}, "issued_before"},
		{map[string]interface{}{"action": "revoke", "client": "a", "reason": "x", "clinet": "b"}, "clinet"},
		{map[string]interface{}{"action": "revoke", "client": "a", "reason": "x", "cursor": "a/k00"}, "cursor"},
	} {
		e.userErr(logical.UpdateOperation, "operations", c.data, c.want)
	}
	if ids, _ := listOperations(e.ctx, e.storage); len(ids) != 0 {
		t.Fatalf("refused requests stored operations: %v", ids)
	}
	e.userErr(logical.UpdateOperation, "operations/nope/cancel", nil, "does not exist")
	if resp := e.do(logical.ReadOperation, "operations/nope", nil); resp != nil {
		t.Fatalf("read of a missing operation: %v", resp)
	}
}

func TestOperationMatchingNothingCompletes(t *testing.T) {
	e := newTestEnv(t)
	e.opsEnv(2)
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "owner": "nobody", "reason": "drill"})
	op := e.runOperation(resp.Data["id"].(string))
	if op.State != record.OperationCompleted || op.Matched != 0 || op.Scanned != 4 {
		t.Fatalf("ended: %+v", op)
	}
}

func TestOperationDryRunIsBoundedAndChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.scanBudget = 3
	keys := e.opsEnv(2)
	head := len(e.logTypes())
	data := map[string]interface{}{"action": "revoke", "scope": "orders:read", "reason": "what if", "dry_run": true}
	resp := e.ok(logical.UpdateOperation, "operations", data)
	if resp.Data["matched"] != 3 || resp.Data["complete"] != false || resp.Data["cursor"] != "b/k00" {
		t.Fatalf("first page: %v", resp.Data)
	}
	if c := resp.Data["clients"].(map[string]interface{}); c["a"] != 2 || c["b"] != 1 {
		t.Fatalf("per client: %v", c)
	}
	data["cursor"] = resp.Data["cursor"]
	resp = e.ok(logical.UpdateOperation, "operations", data)
	if resp.Data["matched"] != 1 || resp.Data["complete"] != true || len(resp.Data["keys"].([]map[string]interface{})) != 1 {
		t.Fatalf("second page: %v", resp.Data)
	}
	if len(e.logTypes()) != head {
		t.Fatal("a dry run wrote to the log")
	}
	if ids, _ := listOperations(e.ctx, e.storage); len(ids) != 0 {
		t.Fatalf("a dry run stored an operation: %v", ids)
	}
	for p, k := range keys {
		if got := e.verifyCode(k, nil); got != "" {
			t.Fatalf("after a dry run %s verifies %q", p, got)
		}
	}
}

func TestOperationCancelStopsAtStepBoundary(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.stepBudget = 2
	keys := e.opsEnv(4)
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "all": true, "reason": "INC-1"})
	id := resp.Data["id"].(string)
	if more, err := e.b.stepOperation(e.ctx, e.storage, id); err != nil || !more {
		t.Fatalf("step: %v %v", more, err)
	}
	resp = e.ok(logical.UpdateOperation, "operations/"+id+"/cancel", nil)
	if resp.Data["state"] != record.OperationCancelled || resp.Data["done"] != 2 {
		t.Fatalf("cancel: %v", resp.Data)
	}
	if more, err := e.b.stepOperation(e.ctx, e.storage, id); err != nil || more {
		t.Fatalf("step after cancel: %v %v", more, err)
	}
	revoked := 0
	for _, k := range keys {
		if e.verifyCode(k, nil) == record.CodeRevoked {
			revoked++
		}
	}
	if revoked != 2 {
		t.Fatalf("%d keys refused after a cancel after one step of 2", revoked)
	}
	if got := e.logEventsOf(eventlog.OperationCancelled); len(got) != 1 || got[0].Details["operation_id"] != id {
		t.Fatalf("cancel entries: %v", got)
	}
	resp = e.ok(logical.UpdateOperation, "operations/"+id+"/cancel", nil)
	if len(resp.Warnings) == 0 {
		t.Fatal("cancelling an ended operation gave no warning")
	}
}

// A step that dies halfway (a commit fails, as a crash would leave it)
// stores no progress; after a restart the step is redone, and the keys it
// had rotated are recognised by their Operation and not rotated again.
func TestOperationRotateResumesWithoutRotatingTwice(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.stepBudget = 4
	e.opsEnv(3)
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "rotate", "role": "r", "reason": "rotate all"})
	id := resp.Data["id"].(string)
	commits := 0
	e.b.commitHook = func(step string) error {
		if step == "key" {
			commits++
			if commits == 3 {
				return errors.New("crash")
			}
		}
		return nil
	}
	if _, err := e.b.stepOperation(e.ctx, e.storage, id); err == nil {
		t.Fatal("the step did not fail")
	}
	if op := e.operation(id); op.Cursor != "" || op.Done != 0 {
		t.Fatalf("a failed step stored progress: %+v", op)
	}
	e.b.commitHook = nil
	e.restart()
	e.b.ops.stepBudget = 4
	op := e.runOperation(id)
	if op.State != record.OperationCompleted || op.Done != 6 || op.Matched != 6 {
		t.Fatalf("ended: %+v", op)
	}
	for _, c := range []string{"a", "b"} {
		for i := 0; i < 3; i++ {
			k := e.issued(c, fmt.Sprintf("k%02d", i))
			if k.LatestVersion() != 2 || k.Operation != id {
				t.Fatalf("%s/%s: version %d operation %q", c, k.Name, k.LatestVersion(), k.Operation)
			}
		}
	}
	for _, ev := range e.logEventsOf(eventlog.KeyRotated) {
		if ev.RequestID != id {
			t.Fatalf("key.rotated entry without the operation id: %+v", ev)
		}
	}
}

func TestOperationLockLocksEachClientOnce(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.stepBudget = 1
	keys := e.opsEnv(3)
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "lock", "environment": "prod", "reason": "INC-5"})
	op := e.runOperation(resp.Data["id"].(string))
	if op.State != record.OperationCompleted || op.Done != 6 {
		t.Fatalf("ended: %+v", op)
	}
	if n := len(e.logEventsOf(eventlog.ClientLocked)); n != 2 {
		t.Fatalf("%d client.locked entries for 2 clients", n)
	}
	for p, k := range keys {
		if got := e.verifyCode(k, nil); got != record.CodeLocked {
			t.Fatalf("%s verifies %q", p, got)
		}
	}
}

// Another node learns of a revoke through storage invalidation and applies
// it to verify at once; its end lifts it there too.
func TestOperationInvalidationReachesOtherNodes(t *testing.T) {
	e := newTestEnv(t)
	keys := e.opsEnv(1)
	other := newBackend(e.clock)
	if err := other.Setup(e.ctx, &logical.BackendConfig{Logger: e.b.logger, System: logical.TestSystemView(), StorageView: e.storage}); err != nil {
		t.Fatal(err)
	}
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "b", "reason": "INC-3"})
	id := resp.Data["id"].(string)
	k := e.issued("b", "k00")
	if other.ops.instantCode(k) != "" {
		t.Fatal("applied before the invalidation")
	}
	other.invalidate(e.ctx, operationStorageKey(id))
	if other.ops.instantCode(k) != record.CodeRevoked || other.ops.instantCode(e.issued("a", "k00")) != "" {
		t.Fatal("the other node does not apply the revoke to b's key only")
	}
	e.ok(logical.UpdateOperation, "operations/"+id+"/cancel", nil)
	other.invalidate(e.ctx, operationStorageKey(id))
	if other.ops.instant.Load() != nil {
		t.Fatal("a cancelled operation is still applied on the other node")
	}
	if e.verifyCode(keys["b/k00"], nil) != "" {
		t.Fatal("b's key is refused after the cancel before the worker reached it")
	}
}

// driveOperations drives every operations path for TestResponses.
func driveOperations(r *respEnv) {
	r.opsEnv(1)
	r.check(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "a", "reason": "x", "dry_run": true})
	resp := r.check(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "a", "reason": "x"})
	id := resp.Data["id"].(string)
	r.check(logical.ListOperation, "operations/", nil)
	r.check(logical.ReadOperation, "operations/"+id, nil)
	r.check(logical.UpdateOperation, "operations/"+id+"/cancel", nil)
	r.runOperation(id)
	r.check(logical.ReadOperation, "operations/"+id, nil)
}

// A bulk disable holds at once, is reversible key by key, skips keys that
// were disabled before it, and names the operation's creator as who
// disabled each key.
func TestOperationDisableIsReversibleAndSkipsDisabledKeys(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.stepBudget = 2
	keys := e.opsEnv(3)
	e.ok(logical.UpdateOperation, "keys/a/k00/disable", map[string]interface{}{"reason": "earlier"})
	resp := e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "disable", "client": "a", "reason": "INC-12 suspected leak"})
	id := resp.Data["id"].(string)
	if got := e.verifyCode(keys["a/k01"], nil); got != record.CodeDisabled {
		t.Fatalf("before the first step a/k01 verifies %q, want disabled", got)
	}
	if got := e.verifyCode(keys["b/k01"], nil); got != "" {
		t.Fatalf("b/k01, not selected, verifies %q", got)
	}
	// One step counts all three keys of a (the count reads ahead) and
	// works on two of them.
	if more, err := e.b.stepOperation(e.ctx, e.storage, id); err != nil || !more {
		t.Fatalf("first step: %v %v", more, err)
	}
	got := e.ok(logical.ReadOperation, "operations/"+id, nil).Data
	if got["total"] != 3 || got["counting"] != false || got["remaining"] != 1 {
		t.Fatalf("after one step: total=%v counting=%v remaining=%v, want 3 false 1", got["total"], got["counting"], got["remaining"])
	}
	op := e.runOperation(id)
	if op.State != record.OperationCompleted || op.Done != 2 || op.Skipped != 1 || op.Remaining() != 0 {
		t.Fatalf("operation ended %s done=%d skipped=%d, want completed 2 1", op.State, op.Done, op.Skipped)
	}
	k, err := e.b.getKey(e.ctx, e.storage, "a", "k01")
	if err != nil || !k.Disabled || k.DisabledReason != "INC-12 suspected leak" || k.DisabledBy == nil || k.DisabledBy.Type == actorSystem || k.Operation != id {
		t.Fatalf("a/k01 after the operation: %+v, %v", k, err)
	}
	if k0, _ := e.b.getKey(e.ctx, e.storage, "a", "k00"); k0.DisabledReason != "earlier" {
		t.Fatalf("a/k00 was disabled before the operation; its reason became %q", k0.DisabledReason)
	}
	e.ok(logical.UpdateOperation, "keys/a/k01/enable", nil)
	if got := e.verifyCode(keys["a/k01"], nil); got != "" {
		t.Fatalf("a/k01 after enable verifies %q", got)
	}
	if got := e.verifyCode(keys["a/k02"], nil); got != record.CodeDisabled {
		t.Fatalf("a/k02, still disabled, verifies %q", got)
	}
	entries := e.logEventsOf(eventlog.KeyDisabled)
	n := 0
	for _, ev := range entries {
		if ev.Details["operation_id"] == id {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d key.disabled entries name the operation, want 2", n)
	}
}

// Ended operations are kept for their retention, then deleted with an
// operations.pruned entry; a running or recent one is kept.
func TestEndedOperationsPrunedAfterRetention(t *testing.T) {
	e := newTestEnv(t)
	e.opsEnv(1)
	start := func() string {
		return e.ok(logical.UpdateOperation, "operations", map[string]interface{}{"action": "revoke", "client": "nobody", "reason": "drill"}).Data["id"].(string)
	}
	old := start()
	e.runOperation(old)
	e.clock.Advance(operationRetention - time.Hour)
	recent := start()
	e.runOperation(recent)
	running := start()
	req := &logical.Request{Storage: e.storage}
	if err := e.b.pruneOperations(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	if ids, _ := listOperations(e.ctx, e.storage); len(ids) != 3 {
		t.Fatalf("pruned before the retention: %v", ids)
	}
	e.clock.Advance(2 * time.Hour)
	if err := e.b.pruneOperations(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	ids, _ := listOperations(e.ctx, e.storage)
	if len(ids) != 2 || !slices.Contains(ids, recent) || !slices.Contains(ids, running) {
		t.Fatalf("after the retention of the first: %v, want [%s %s]", ids, recent, running)
	}
	evs := e.logEventsOf(eventlog.OperationsPruned)
	if len(evs) != 1 || evs[0].Details["operation_ids"] != old || evs[0].Details["count"] != "1" {
		t.Fatalf("operations.pruned entries: %+v", evs)
	}
	if op, err := getOperation(e.ctx, e.storage, old); err != nil || op != nil {
		t.Fatalf("the pruned operation is still stored: %+v, %v", op, err)
	}
}

// A bulk operation resumes, and notifications flow, after a plugin restart
// even when Vault cancels the restart's initialization (it runs under the
// request that woke the plugin); the periodic function starts either
// worker if it does not run.
func TestWorkersStartWithoutACleanInitialization(t *testing.T) {
	e := newTestEnv(t)
	e.b.ops.run, e.b.runOutbox = true, true
	defer e.b.stopOperations()
	defer e.b.outbox.Stop()
	running := func() bool {
		e.b.ops.ctl.Lock()
		defer e.b.ops.ctl.Unlock()
		return e.b.ops.stop != nil
	}
	canceled, cancel := context.WithCancel(e.ctx)
	cancel()
	if err := e.b.initializeAll(canceled, &logical.InitializationRequest{Storage: e.storage}); err == nil {
		t.Fatal("the initialization under a canceled request succeeded: this test no longer covers a failed one")
	}
	if !running() || !e.b.outbox.Running() {
		t.Fatalf("after an initialization under a canceled request: operations worker %v, outbox %v", running(), e.b.outbox.Running())
	}
	e.b.stopOperations()
	e.b.outbox.Stop()
	if running() {
		t.Fatal("the worker did not stop")
	}
	if err := e.b.periodic(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if !running() || !e.b.outbox.Running() {
		t.Fatalf("the periodic function did not start what was missing: operations worker %v, outbox %v", running(), e.b.outbox.Running())
	}
}
