package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Retention of approval requests. Every request ends by its expires_at (at
// most 7 days after it was made): used or denied before, expired then. It
// is kept the config's approval_request_retention (default 90 days) after
// its expires_at, so the requests list still shows, through a quarterly
// review, who asked, who decided and which key it served; then it is
// deleted. Its history stays in the lifecycle log: request.created,
// request.approved or request.denied, request.used, and the
// requests.pruned entry naming it, written before it is deleted.
//
// A request is found through its retention pointer (retention_index.go),
// written at creation in the bucket of its expires_at. A request that a
// change on this node is using right now is never deleted, nor one whose
// use was interrupted after its key was committed before that use is
// recorded (request.used, as any later read of it would).

const retentionKindRequests = "requests"

func (b *apikeysBackend) requestRetention() retentionKind {
	return retentionKind{
		name:         retentionKindRequests,
		recordPrefix: storageRequestPrefix,
		setting:      "approval_request_retention",
		retention:    func(c *record.Config) time.Duration { return c.ApprovalRequestRetention },
		examine:      b.pruneRequests,
	}
}

// storeNewRequest stores a request just made, its retention pointer
// first.
func (b *apikeysBackend) storeNewRequest(ctx context.Context, s logical.Storage, r *ApprovalRequest) error {
	if err := b.putRetentionPointer(ctx, s, retentionKindRequests, r.ID, r.ExpiresAt); err != nil {
		return err
	}
	return putRequest(ctx, s, r)
}

// pruneRequests deletes the requests of ids that are past their retention,
// under the approvals lock, so no decision or use changes one meanwhile.
func (b *apikeysBackend) pruneRequests(ctx context.Context, s logical.Storage, ids []string, now time.Time, retention time.Duration) ([]string, map[string]time.Time, error) {
	defer b.approvals.lock()()
	var gone, due []string
	kept := map[string]time.Time{}
	for _, id := range ids {
		r, err := getRequest(ctx, s, id)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case r == nil:
			gone = append(gone, id)
		case b.approvals.inUse[id]:
			kept[id] = now // in use: looked at again tomorrow
		case now.Before(r.ExpiresAt.Add(retention)):
			kept[id] = r.ExpiresAt
		default:
			if err := b.settleUse(ctx, s, r); err != nil {
				return nil, nil, err
			}
			due = append(due, id)
		}
	}
	for len(due) > 0 {
		batch := due[:min(len(due), retentionEventMax)]
		due = due[len(batch):]
		ev := systemEvent(eventlog.RequestsPruned)
		ev.Time = now
		ev.Details = map[string]string{
			"count":                      strconv.Itoa(len(batch)),
			"approval_ids":               strings.Join(batch, ","),
			"approval_request_retention": retention.String(),
		}
		// Nothing is deleted unless the log says so.
		if err := b.log.Append(ctx, s, ev); err != nil {
			return gone, kept, err
		}
		for _, id := range batch {
			if err := s.Delete(ctx, requestStorageKey(id)); err != nil {
				return gone, kept, fmt.Errorf("deleting request %s: %w", id, err)
			}
			gone = append(gone, id)
		}
	}
	return gone, kept, nil
}
