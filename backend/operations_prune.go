package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

const (
	// operationRetention is how long an ended operation's record is kept:
	// its progress matters while the incident is reviewed; the keys'
	// entries and operation.* entries stay in the lifecycle log.
	operationRetention = 90 * 24 * time.Hour
	// operationPruneMax bounds the records one tick deletes.
	operationPruneMax = 100
)

// pruneOperations deletes ended operations past their retention, oldest
// first, logging an operations.pruned entry naming them before deleting
// them. Ids begin with their creation time, so the walk stops at the
// first id created after the cutoff: none after it can have ended before.
func (b *apikeysBackend) pruneOperations(ctx context.Context, req *logical.Request) error {
	s := req.Storage
	now := b.clock.Now()
	cutoff := now.Add(-operationRetention)
	ids, err := listOperations(ctx, s)
	if err != nil {
		return err
	}
	var gone []string
	for _, id := range ids {
		if len(gone) == operationPruneMax {
			break
		}
		if created, ok := operationIDTime(id); ok && created.After(cutoff) {
			break
		}
		op, err := getOperation(ctx, s, id)
		if err != nil || op == nil {
			continue // unreadable: kept, and its read says why
		}
		if op.Ended() && op.EndedAt.Before(cutoff) {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	b.ops.mu.Lock()
	defer b.ops.mu.Unlock()
	ev := systemEvent(eventlog.OperationsPruned)
	ev.Time = now
	ev.Details = map[string]string{
		"count": strconv.Itoa(len(gone)), "operation_ids": strings.Join(gone, ","),
		"retention": operationRetention.String(),
	}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return err
	}
	for _, id := range gone {
		if err := s.Delete(ctx, operationStorageKey(id)); err != nil {
			return fmt.Errorf("deleting operation %s: %w", id, err)
		}
	}
	return nil
}

// operationIDTime is the creation time an operation id begins with.
func operationIDTime(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
