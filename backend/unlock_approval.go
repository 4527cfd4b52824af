package backend

import (
	"context"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// A client locked by an automated require_reapproval response
// (Client.UnlockRequiresApproval) unlocks only with an approved request of
// kind "unlock": its requester files it at requests (kind=unlock,
// client, justification), another Vault entity approves it, and the
// requester unlocks with clients/<name>/unlock approval_id=<id>. The rules
// are those of key approvals (approval.go): a different approving entity,
// single use, expiry.
const requestKindUnlock = "unlock"

// createUnlockRequest files a pending unlock request for client; the
// caller checked that req has an entity.
func (b *apikeysBackend) createUnlockRequest(ctx context.Context, req *logical.Request, client, role, name, justification string, ttl time.Duration) (*ApprovalRequest, error) {
	if client == "" {
		return nil, userErrorf("client is required: an unlock request names the client to unlock")
	}
	if err := record.ValidateName("client", client); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if role != "" || name != "" {
		return nil, userErrorf("role and name are not used by an unlock request (kind=unlock); give only client and justification")
	}
	if justification == "" {
		return nil, userErrorf("justification is required: say why the client may be unlocked, for the approver")
	}
	s := req.Storage
	c, err := b.getClient(ctx, s, client)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, userErrorf("client %q does not exist", client)
	}
	if c.Status != record.ClientLocked || !c.UnlockRequiresApproval {
		return nil, userErrorf("client %q is %s and needs no approval to unlock; an unlock request is only for a client locked by a require_reapproval response", client, c.Status)
	}
	id, err := newRequestID()
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	r := &ApprovalRequest{
		ID: id, Kind: requestKindUnlock, Client: client, Justification: justification,
		State: requestPending, RequestedBy: actorFromRequest(req), CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := b.storeNewRequest(ctx, s, r); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.RequestCreated)
	ev.Client = client
	ev.Details = map[string]string{"approval_id": id, "kind": requestKindUnlock, "expires_at": r.ExpiresAt.Format(time.RFC3339)}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return nil, err
	}
	return r, nil
}

// checkUnlockApproval lets an unlock of c proceed: a client that needs no
// approval must not be given one (recording an approval nobody needed
// would show a separation of duties that did not happen); one that needs
// it uses the approved unlock request approvalID. The caller holds the
// client's lock exclusively, so two unlocks cannot use one approval.
func (b *apikeysBackend) checkUnlockApproval(ctx context.Context, req *logical.Request, s logical.Storage, c *record.Client, approvalID string) error {
	approvalID = strings.TrimSpace(approvalID)
	if !c.UnlockRequiresApproval {
		if approvalID != "" {
			return userErrorf("client %q does not need an approval to unlock; omit approval_id", c.Name)
		}
		return nil
	}
	if req == nil {
		return userErrorf("client %q unlocks only with an approved unlock request", c.Name)
	}
	if approvalID == "" {
		return userErrorf("client %q was locked by an automated response that requires re-approval: file a request (vault write <mount>/requests kind=unlock client=%s justification=...), have another person approve it at requests/<id>/approve, then unlock with approval_id=<id>", c.Name, c.Name)
	}
	return b.useUnlockApproval(ctx, req, s, c.Name, approvalID)
}

// useUnlockApproval checks the approved unlock request id for client and
// marks it used. It is marked used before the unlock is stored: an unlock
// that then fails costs the approval (file a new one), and no approval can
// ever unlock twice.
func (b *apikeysBackend) useUnlockApproval(ctx context.Context, req *logical.Request, s logical.Storage, client, id string) error {
	defer b.approvals.lock()()
	r, err := getRequest(ctx, s, id)
	if err != nil {
		return err
	}
	if r == nil {
		return userErrorf("approval_id %q does not name an approval request", id)
	}
	if r.Kind != requestKindUnlock {
		return userErrorf("request %s approves a key, not the unlock of a client; file a request with kind=unlock", r.ID)
	}
	if b.approvals.inUse[r.ID] {
		return userErrorf("request %s is being used right now; an approval is single-use", r.ID)
	}
	now := b.clock.Now()
	switch st := r.effectiveState(now); st {
	case requestApproved:
	case requestUsed:
		return userErrorf("request %s was already used at %s; an approval is single-use, create a new request", r.ID, r.UsedAt.Format(time.RFC3339))
	case requestExpired:
		return userErrorf("request %s expired at %s; create a new request", r.ID, r.ExpiresAt.Format(time.RFC3339))
	default:
		return userErrorf("request %s is %s; it must be approved by another person first", r.ID, st)
	}
	if r.Client != client {
		return userErrorf("request %s approves the unlock of client %q, not %q", r.ID, r.Client, client)
	}
	actor := actorFromRequest(req)
	if r.DecidedBy != nil && sameEntity(actor, *r.DecidedBy) {
		return userErrorf("separation of duties: this Vault entity approved request %s and so cannot also unlock the client; the requester does", r.ID)
	}
	if r.RequestedBy.EntityID == "" || actor.EntityID != r.RequestedBy.EntityID {
		return userErrorf("request %s was made by another Vault entity (or by none); only its requester's entity can use the approval", r.ID)
	}
	r.State, r.UsedAt, r.UsedBy, r.UsedRequest = requestUsed, now, &actor, req.ID
	if err := putRequest(ctx, s, r); err != nil {
		return err
	}
	ev := eventFromRequest(req, eventlog.RequestUsed)
	ev.Client = client
	ev.Details = map[string]string{"approval_id": r.ID, "kind": requestKindUnlock}
	return b.log.Append(ctx, s, ev)
}
