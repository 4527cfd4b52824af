package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Separation of duties (SPEC §6): a role with requires_approval issues a key
// only against an approved request ("requests/<id>") that names the same
// client, role and key name. The approving Vault entity must differ from the
// requesting one, tokens without an entity cannot approve, and an approval
// is used at most once and expires.
const storageRequestPrefix = "requests/"

// Request states. "expired" is derived from ExpiresAt, never stored.
const (
	requestPending  = "pending"
	requestApproved = "approved"
	requestDenied   = "denied"
	requestUsed     = "used"
	requestExpired  = "expired"
)

// Lifecycle-log event types of requests besides eventApproval.
const (
	eventRequestCreated = "request.created"
	eventRequestDenied  = "request.denied"
	eventRequestUsed    = "request.used"
)

const (
	defaultApprovalTTL = 24 * time.Hour
	maxApprovalTTL     = 7 * day
	minApprovalTTL     = time.Minute
)

// ApprovalRequest is one request to issue a key under a role that requires
// approval.
type ApprovalRequest struct {
	ID            string    `json:"id"`
	Client        string    `json:"client"`
	Role          string    `json:"role"`
	KeyName       string    `json:"key_name"`
	Justification string    `json:"justification"`
	State         string    `json:"state"`
	RequestedBy   Actor     `json:"requested_by"`
	CreatedAt     time.Time `json:"created_at"`
	// ExpiresAt ends both a pending request and an unused approval.
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedBy   *Actor    `json:"decided_by,omitempty"`
	DecidedAt   time.Time `json:"decided_at,omitempty"`
	Comment     string    `json:"comment,omitempty"`
	UsedAt      time.Time `json:"used_at,omitempty"`
	UsedBy      *Actor    `json:"used_by,omitempty"`
	UsedRequest string    `json:"used_request,omitempty"`
}

func requestStorageKey(id string) string { return storageRequestPrefix + id }

func newRequestID() (string, error) {
	var buf [12]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return "req_" + hex.EncodeToString(buf[:]), nil
}

// effectiveState is the state as of now: an open request past its expiry
// is expired.
func (r *ApprovalRequest) effectiveState(now time.Time) string {
	if (r.State == requestPending || r.State == requestApproved) && !now.Before(r.ExpiresAt) {
		return requestExpired
	}
	return r.State
}

func getRequest(ctx context.Context, s logical.Storage, id string) (*ApprovalRequest, error) {
	entry, err := s.Get(ctx, requestStorageKey(id))
	if err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	var r ApprovalRequest
	if err := entry.DecodeJSON(&r); err != nil {
		return nil, fmt.Errorf("decoding request %s: %w", id, err)
	}
	return &r, nil
}

func putRequest(ctx context.Context, s logical.Storage, r *ApprovalRequest) error {
	entry, err := logical.StorageEntryJSON(requestStorageKey(r.ID), r)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing request: %w", err)
	}
	return nil
}

// sameEntity reports whether two actors are the same Vault entity.
func sameEntity(a, b Actor) bool {
	return a.EntityID != "" && a.EntityID == b.EntityID
}

// decide approves or denies a pending request.
func (b *apikeysBackend) decide(ctx context.Context, req *logical.Request, id string, approve bool, comment string) (*ApprovalRequest, error) {
	actor := actorFromRequest(req)
	if approve && actor.EntityID == "" {
		return nil, userErrorf("this token has no Vault identity entity (e.g. the root token or a token created without one), so separation of duties cannot be checked: approve with a token from an auth method (userpass, OIDC, ...) whose login maps to an entity")
	}
	b.gov.requestsMu.Lock()
	defer b.gov.requestsMu.Unlock()
	s := req.Storage
	r, err := getRequest(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, userErrorf("request %q does not exist; list requests with: vault list <mount>/requests", id)
	}
	now := b.clock.Now()
	if st := r.effectiveState(now); st != requestPending {
		return nil, userErrorf("request %s is %s, not pending; only pending requests can be approved or denied (create a new request if needed)", id, st)
	}
	if approve && sameEntity(actor, r.RequestedBy) {
		return nil, userErrorf("separation of duties: request %s was made by this same Vault entity (%s); another person must approve it", id, actor.EntityID)
	}
	r.State = requestDenied
	typ := eventRequestDenied
	if approve {
		r.State = requestApproved
		typ = eventApproval
	}
	r.DecidedBy, r.DecidedAt, r.Comment = &actor, now, comment
	if err := putRequest(ctx, s, r); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, typ)
	ev.Client, ev.Key, ev.Role = r.Client, r.KeyName, r.Role
	ev.Details = map[string]string{"approval_request": r.ID, "requested_by": r.RequestedBy.EntityID}
	if comment != "" {
		ev.Details["comment"] = comment
	}
	if err := b.appendEvent(ctx, s, ev); err != nil {
		return nil, err
	}
	return r, nil
}

// consumeApproval checks and uses up the approved request that a role with
// requires_approval needs; issuance calls it under the client and key
// locks. It returns a message when the issuance must be refused. The
// request must be approved,
// unexpired, unused, for exactly this client, role and key name; the issuer
// must be the entity that asked for it and never the approver. On success
// the request is marked used before the key is created, so it cannot serve
// two issuances.
func (b *apikeysBackend) consumeApproval(ctx context.Context, req *logical.Request, in issueInput) (string, error) {
	if in.requestID == "" {
		return fmt.Sprintf("role %q requires approval: create a request (vault write <mount>/requests client=%s role=%s name=%s justification=...), have another person approve it at requests/<id>/approve, then issue with request_id=<id>", in.roleName, in.clientName, in.roleName, in.name), nil
	}
	b.gov.requestsMu.Lock()
	defer b.gov.requestsMu.Unlock()
	s := req.Storage
	r, err := getRequest(ctx, s, in.requestID)
	if err != nil {
		return "", err
	}
	if r == nil {
		return fmt.Sprintf("request_id %q does not name an approval request", in.requestID), nil
	}
	now := b.clock.Now()
	switch st := r.effectiveState(now); st {
	case requestApproved:
	case requestUsed:
		return fmt.Sprintf("request %s was already used at %s; an approval is single-use, create a new request", r.ID, r.UsedAt.Format(time.RFC3339)), nil
	case requestExpired:
		return fmt.Sprintf("request %s expired at %s; create a new request", r.ID, r.ExpiresAt.Format(time.RFC3339)), nil
	default:
		return fmt.Sprintf("request %s is %s; it must be approved by another person first", r.ID, st), nil
	}
	if r.Client != in.clientName || r.Role != in.roleName || r.KeyName != in.name {
		return fmt.Sprintf("request %s approves key %s/%s under role %q, not %s/%s under role %q", r.ID, r.Client, r.KeyName, r.Role, in.clientName, in.name, in.roleName), nil
	}
	actor := actorFromRequest(req)
	if r.DecidedBy != nil && sameEntity(actor, *r.DecidedBy) {
		return fmt.Sprintf("separation of duties: this Vault entity approved request %s and so cannot also issue the key; the requester issues it", r.ID), nil
	}
	if r.RequestedBy.EntityID == "" || actor.EntityID != r.RequestedBy.EntityID {
		return fmt.Sprintf("request %s was made by another Vault entity (or by none); only its requester's entity can use the approval", r.ID), nil
	}
	r.State, r.UsedAt, r.UsedBy, r.UsedRequest = requestUsed, now, &actor, req.ID
	if err := putRequest(ctx, s, r); err != nil {
		return "", err
	}
	ev := eventFromRequest(req, eventRequestUsed)
	ev.Client, ev.Key, ev.Role = r.Client, r.KeyName, r.Role
	ev.Details = map[string]string{"approval_request": r.ID}
	if err := b.appendEvent(ctx, s, ev); err != nil {
		return "", err
	}
	return "", nil
}

func (r *ApprovalRequest) responseData(now time.Time) map[string]interface{} {
	d := map[string]interface{}{
		"request_id":    r.ID,
		"client":        r.Client,
		"role":          r.Role,
		"name":          r.KeyName,
		"justification": r.Justification,
		"state":         r.effectiveState(now),
		"requested_by":  r.RequestedBy,
		"created_at":    r.CreatedAt,
		"expires_at":    r.ExpiresAt,
	}
	if r.DecidedBy != nil {
		d["decided_by"] = r.DecidedBy
		d["decided_at"] = r.DecidedAt
		d["comment"] = r.Comment
	}
	if r.UsedBy != nil {
		d["used_at"] = r.UsedAt
		d["used_by"] = r.UsedBy
	}
	return d
}
