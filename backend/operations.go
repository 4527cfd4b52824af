package backend

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Bulk operations (SPEC §10): an operation applies one action to every key
// its selector matches, in the background, in bounded steps of the key walk
// (keywalk.go). Its record holds the walk's cursor and counts and is
// stored after every step, so a crash, restart or failover resumes it
// where the last stored step ended. A key the action changed names the
// operation (record.Key.Operation) in the same commit, so a step redone
// after a crash counts it as done and does not change it again.
//
// Lock order: bulkOps.mu is 2c in locks.go.

const storageOperationPrefix = "operations/"

const (
	// operationStepBudget bounds the key records one step reads.
	operationStepBudget = 250
	// operationCountBudget bounds the key records one step's count reads:
	// more than a step changes, so the count finishes well ahead of the work.
	operationCountBudget = 4 * operationStepBudget
	// operationIdleWait is how often the worker looks for operations it
	// was not woken for (another node accepted them before a failover).
	operationIdleWait = 2 * time.Second
)

func operationStorageKey(id string) string { return storageOperationPrefix + id }

// keyOutcome is what an action did to one matched key.
type keyOutcome int

const (
	outcomeDone      keyOutcome = iota // changed now, or found changed by this operation
	outcomeSkipped                     // the action does not apply to this key
	outcomeUnmatched                   // the key changed since the walk read it
)

// operationAction applies an action to one key the walk read (k, read
// without the key lock: the action re-reads it under the lock).
type operationAction func(b *apikeysBackend, ctx context.Context, req *logical.Request, op *record.Operation, k *record.Key) (keyOutcome, error)

// operationActions is the table of actions.
var operationActions = map[string]operationAction{
	record.OperationRevoke:  (*apikeysBackend).operationRevoke,
	record.OperationRotate:  (*apikeysBackend).operationRotate,
	record.OperationLock:    (*apikeysBackend).operationLock,
	record.OperationDisable: (*apikeysBackend).operationDisable,
}

// operationInstantCodes names the actions verify applies to every key the
// selector of a running operation matches, before the worker reaches it,
// and the code it answers for them.
var operationInstantCodes = map[string]string{
	record.OperationRevoke:  record.CodeRevoked,
	record.OperationDisable: record.CodeDisabled,
}

// bulkOps is the bulk-operation engine's state on one node.
type bulkOps struct {
	// mu serialises changes of operation records (steps, create, cancel).
	mu sync.Mutex
	// instant holds the running operations whose action verify applies at
	// once (operationInstantCodes); nil when there is none, so verify pays
	// one atomic load.
	instant atomic.Pointer[[]*record.Operation]

	// stepBudget and scanBudget, when set (tests), replace
	// operationStepBudget and dryRunScanBudget.
	stepBudget, scanBudget int

	run  bool // the worker runs in its own goroutine (Factory)
	wake chan struct{}
	ctl  sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// instantCode is the code verify answers for k when a running operation
// has already decided its fate, or "".
func (o *bulkOps) instantCode(k *record.Key) string {
	p := o.instant.Load()
	if p == nil {
		return ""
	}
	for _, op := range *p {
		if op.Selector.Matches(k) {
			return operationInstantCodes[op.Action]
		}
	}
	return ""
}

// track adds, replaces or (when ended) drops op in the instant set.
func (o *bulkOps) track(op *record.Operation) {
	if _, ok := operationInstantCodes[op.Action]; !ok {
		return
	}
	o.ctl.Lock()
	defer o.ctl.Unlock()
	var next []*record.Operation
	if p := o.instant.Load(); p != nil {
		for _, x := range *p {
			if x.ID != op.ID {
				next = append(next, x)
			}
		}
	}
	if !op.Ended() {
		next = append(next, op)
	}
	if len(next) == 0 {
		o.instant.Store(nil)
		return
	}
	o.instant.Store(&next)
}

func (o *bulkOps) forget(id string) {
	o.track(&record.Operation{ID: id, Action: record.OperationRevoke, State: record.OperationCancelled})
}

func (o *bulkOps) wakeUp() {
	if o.wake == nil {
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func newOperationID(now time.Time) string {
	buf := make([]byte, 4)
	_, _ = rand.Read(buf) // a failed read leaves zeros: the time part still orders and separates ids
	return fmt.Sprintf("%016x%s", now.UnixNano(), hex.EncodeToString(buf))
}

func getOperation(ctx context.Context, s logical.Storage, id string) (*record.Operation, error) {
	return getJSON[record.Operation](ctx, s, operationStorageKey(id), "operation "+id)
}

func putOperation(ctx context.Context, s logical.Storage, op *record.Operation) error {
	return putJSON(ctx, s, operationStorageKey(op.ID), "operation", op)
}

// listOperations returns the stored operation ids, oldest first (ids
// start with their creation time).
func listOperations(ctx context.Context, s logical.Storage) ([]string, error) {
	ids, err := s.List(ctx, storageOperationPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// runningOperations reads every running operation and refreshes the
// instant set from them.
func (b *apikeysBackend) runningOperations(ctx context.Context, s logical.Storage) ([]string, error) {
	ids, err := listOperations(ctx, s)
	if err != nil {
		return nil, err
	}
	var running []string
	for _, id := range ids {
		op, err := getOperation(ctx, s, id)
		if err != nil || op == nil {
			continue // a record that cannot be read is not worked on; its read says why
		}
		b.ops.track(op)
		if !op.Ended() {
			running = append(running, id)
		}
	}
	return running, nil
}

// opRequest is the request an operation's changes are made under: its
// creator as the actor and its id as the request id of every log entry.
func opRequest(op *record.Operation, s logical.Storage) *logical.Request {
	return &logical.Request{
		ID: op.ID, Storage: s, EntityID: op.CreatedBy.EntityID,
		DisplayName: op.CreatedBy.DisplayName, ClientTokenAccessor: op.CreatedBy.Accessor,
	}
}

// stepOperation runs one bounded step of operation id. more reports that
// it is still running.
func (b *apikeysBackend) stepOperation(ctx context.Context, s logical.Storage, id string) (more bool, err error) {
	b.ops.mu.Lock()
	defer b.ops.mu.Unlock()
	op, err := getOperation(ctx, s, id)
	if err != nil || op == nil || op.Ended() {
		return false, err
	}
	act := operationActions[op.Action]
	if act == nil {
		return false, b.endOperation(ctx, s, op, record.OperationFailed, "action "+op.Action+" is not available on this version")
	}
	if err := b.countOperation(ctx, s, op); err != nil {
		return false, err
	}
	req := opRequest(op, s)
	w := keyWalk{After: op.Cursor, Client: op.Selector.Client, Budget: cmp.Or(b.ops.stepBudget, operationStepBudget)}
	cursor, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		op.Scanned++
		if !op.Selector.Matches(k) && k.Operation != op.ID {
			return true, nil
		}
		out, err := act(b, ctx, req, op, k)
		if err != nil {
			// A key the action refuses (its role is gone, its client was
			// de-provisioned) fails; any other error (storage) ends the
			// step unstored, so the key is tried again.
			var ue *userError
			if !errors.As(err, &ue) {
				return false, err
			}
			op.Matched++
			op.Failed++
			op.LastError = fmt.Sprintf("key %s/%s: %v", k.Client, k.Name, err)
			return true, nil
		}
		switch out {
		case outcomeDone:
			op.Matched++
			op.Done++
		case outcomeSkipped:
			op.Matched++
			op.Skipped++
		}
		return true, nil
	})
	if err != nil {
		// Nothing of this step is stored: it is redone, and the keys it
		// changed are recognised by their Operation.
		return false, err
	}
	op.Cursor = cursor
	op.UpdatedAt = b.clock.Now()
	if cursor == "" {
		state := record.OperationCompleted
		if op.Failed > 0 {
			state = record.OperationFailed
		}
		return false, b.endOperation(ctx, s, op, state, "")
	}
	return true, putOperation(ctx, s, op)
}

// countOperation advances op's counting walk by one bounded step. A key
// this operation already changed still counts: the work walk may have
// passed it (a revoked key no longer matches the selector).
func (b *apikeysBackend) countOperation(ctx context.Context, s logical.Storage, op *record.Operation) error {
	if op.Counted {
		return nil
	}
	budget := operationCountBudget
	if b.ops.stepBudget > 0 {
		budget = 4 * b.ops.stepBudget
	}
	w := keyWalk{After: op.CountCursor, Client: op.Selector.Client, Budget: budget}
	cursor, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		if op.Selector.Matches(k) || k.Operation == op.ID {
			op.Total++
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	op.CountCursor, op.Counted = cursor, cursor == ""
	return nil
}

// endOperation stores op ended in state and logs it. The caller holds
// b.ops.mu.
func (b *apikeysBackend) endOperation(ctx context.Context, s logical.Storage, op *record.Operation, state, why string) error {
	now := b.clock.Now()
	op.State, op.EndedAt, op.UpdatedAt = state, now, now
	if why != "" {
		op.LastError = why
	}
	if err := putOperation(ctx, s, op); err != nil {
		return err
	}
	b.ops.track(op)
	ev := systemEvent(eventlog.OperationFinished)
	ev.RequestID = op.ID
	ev.Details = operationCounts(op)
	return b.log.Append(ctx, s, ev)
}

func operationCounts(op *record.Operation) map[string]string {
	return map[string]string{
		"operation_id": op.ID, "action": op.Action, "state": op.State,
		"matched": strconv.Itoa(op.Matched), "done": strconv.Itoa(op.Done),
		"skipped": strconv.Itoa(op.Skipped), "failed": strconv.Itoa(op.Failed),
		"total": strconv.Itoa(op.Total),
	}
}

// operationRevoke revokes a matched key with the operation's reason.
func (b *apikeysBackend) operationRevoke(ctx context.Context, req *logical.Request, op *record.Operation, seen *record.Key) (keyOutcome, error) {
	return b.withMatchedKey(ctx, req.Storage, op, seen, func(k *record.Key) (keyOutcome, error) {
		revoked := k.RevokeAll(b.clock.Now(), op.Reason, op.CreatedBy)
		k.Operation = op.ID
		ev := eventFor(req, eventlog.KeyRevoked, k, 0)
		ev.Details = map[string]string{"reason": op.Reason, "versions": joinInts(revoked), "operation_id": op.ID}
		if err := b.commitKey(ctx, req.Storage, k, nil, ev); err != nil {
			return 0, err
		}
		b.cache.limits.KeyRevoked(k)
		return outcomeDone, nil
	})
}

// withMatchedKey re-reads the key the walk saw under the key's lock and
// applies fn while it still matches; a key this operation already changed
// (a step redone after a crash) counts as done without fn.
func (b *apikeysBackend) withMatchedKey(ctx context.Context, s logical.Storage, op *record.Operation, seen *record.Key, fn func(*record.Key) (keyOutcome, error)) (keyOutcome, error) {
	defer b.locks.lockKey(seen.Client, seen.Name)()
	k, err := b.getKey(ctx, s, seen.Client, seen.Name)
	if err != nil {
		return 0, err
	}
	switch {
	case k != nil && k.Operation == op.ID:
		return outcomeDone, nil
	case !op.Selector.Matches(k):
		return outcomeUnmatched, nil
	}
	return fn(k)
}

// operationDisable disables a matched key, reversibly: keys/<c>/<n>/enable
// turns it back on. A key disabled before the operation is skipped, so
// enabling after the incident does not undo an earlier, separate disable
// by mistake (its operation mark says which keys this operation disabled).
func (b *apikeysBackend) operationDisable(ctx context.Context, req *logical.Request, op *record.Operation, seen *record.Key) (keyOutcome, error) {
	return b.withMatchedKey(ctx, req.Storage, op, seen, func(k *record.Key) (keyOutcome, error) {
		if k.Disabled {
			return outcomeSkipped, nil
		}
		k.Operation = op.ID
		if err := b.commitDisabledLocked(ctx, req, req.Storage, k, true, op.Reason, op.CreatedBy, map[string]string{"operation_id": op.ID}); err != nil {
			return 0, err
		}
		return outcomeDone, nil
	})
}

// operationRotate rotates a matched managed key (leased keys are skipped:
// their lease is their lifetime). The new secret is not shown to anyone:
// retrievable keys are read back from their path, others are re-issued
// by their owners while the previous version's grace runs.
func (b *apikeysBackend) operationRotate(ctx context.Context, req *logical.Request, op *record.Operation, seen *record.Key) (keyOutcome, error) {
	s := req.Storage
	return b.withMatchedKey(ctx, s, op, seen, func(k *record.Key) (keyOutcome, error) {
		if k.Leased {
			return outcomeSkipped, nil
		}
		k, role, c, cfg, err := b.loadKeyForRotation(ctx, s, k.Client, k.Name)
		if err != nil {
			return 0, err
		}
		k.Operation = op.ID
		if _, err := b.rotateLoadedLocked(ctx, req, s, k, role, c, cfg, false, nil); err != nil {
			return 0, err
		}
		return outcomeDone, nil
	})
}

// operationLock locks the client of a matched key, once per client: the
// walk visits keys in client order, and locking a locked client changes
// nothing, so a step redone after a crash locks nobody twice.
func (b *apikeysBackend) operationLock(ctx context.Context, req *logical.Request, op *record.Operation, k *record.Key) (keyOutcome, error) {
	if k.Client == op.LockedClient {
		return outcomeDone, nil
	}
	_, err := b.changeClientStatus(ctx, req, req.Storage, k.Client, clientStatusChange{
		status: record.ClientLocked, reason: op.Reason + " (operation " + op.ID + ")",
	})
	if err != nil {
		return 0, err
	}
	op.LockedClient = k.Client
	return outcomeDone, nil
}

// startOperations loads the running operations (verify applies revokes
// at once on every node) and, on a node that may write, runs the worker.
func (b *apikeysBackend) startOperations(ctx context.Context, s logical.Storage) {
	if _, err := b.runningOperations(ctx, s); err != nil {
		b.logger.Warn("could not load bulk operations at mount start", "error", err)
	}
	if !b.ops.run || !b.writeSafe() {
		return // unit tests step operations themselves
	}
	b.stopOperations()
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ops.ctl.Lock()
	b.ops.stop, b.ops.done = cancel, done
	if b.ops.wake == nil {
		b.ops.wake = make(chan struct{}, 1)
	}
	wake := b.ops.wake
	b.ops.ctl.Unlock()
	go func() {
		defer close(done)
		for {
			more, err := b.operationsPass(wctx, s)
			if wctx.Err() != nil {
				return
			}
			if err != nil {
				b.logger.Warn("bulk operation step failed; retrying", "error", err)
				more = false
			}
			if more {
				continue
			}
			t := time.NewTimer(operationIdleWait)
			select {
			case <-wctx.Done():
				t.Stop()
				return
			case <-wake:
				t.Stop()
			case <-t.C:
			}
		}
	}()
}

// operationsPass runs one step of every running operation.
func (b *apikeysBackend) operationsPass(ctx context.Context, s logical.Storage) (more bool, err error) {
	ids, err := b.runningOperations(ctx, s)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		m, err := b.stepOperation(ctx, s, id)
		if err != nil {
			return false, err
		}
		more = more || m
	}
	return more, nil
}

// stopOperations stops the worker at its next step boundary.
func (b *apikeysBackend) stopOperations() {
	b.ops.ctl.Lock()
	stop, done := b.ops.stop, b.ops.done
	b.ops.stop, b.ops.done = nil, nil
	b.ops.ctl.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// invalidateOperation follows an operation another node changed: verify
// here must apply its revokes too, and stop applying them once it ended.
func (b *apikeysBackend) invalidateOperation(key string) {
	id, ok := strings.CutPrefix(key, storageOperationPrefix)
	if !ok || b.storage == nil {
		return
	}
	op, err := getOperation(context.Background(), b.storage, id)
	if err != nil {
		b.logger.Warn("could not reload a bulk operation another node changed", "operation", id, "error", err)
		return
	}
	if op == nil {
		b.ops.forget(id)
		return
	}
	b.ops.track(op)
}

// initializeAll is the mount's InitializeFunc: the engine's start, then
// the bulk operations'. The operations start even when the engine's start
// failed: Vault runs a restarted plugin's initialization under the request
// that woke it, so a client that gives up cancels it, and a bulk revoke
// must not then wait for the next restart to resume.
func (b *apikeysBackend) initializeAll(ctx context.Context, req *logical.InitializationRequest) error {
	err := b.initialize(ctx, req)
	b.startOperations(ctx, req.Storage)
	return err
}

// ensureOperations starts the operations worker where this node may write
// and none runs: after a failed start, or on a node that became active.
func (b *apikeysBackend) ensureOperations(ctx context.Context, s logical.Storage) {
	b.ops.ctl.Lock()
	running := b.ops.stop != nil
	b.ops.ctl.Unlock()
	if !running && b.ops.run {
		b.startOperations(ctx, s)
	}
}
