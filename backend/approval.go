package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Separation of duties (SPEC §6): a role with requires_approval issues a key,
// or a new secret of an existing key (rotate), only against an approved
// request ("requests/<id>", its id shown and taken as approval_id) that
// names the same client, role and key name. The approving Vault entity must differ from the
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

const (
	defaultApprovalTTL = 24 * time.Hour
	maxApprovalTTL     = 7 * record.Day
	minApprovalTTL     = time.Minute
)

// ApprovalRequest is one request to issue a key under a role that requires
// approval (or, of kind unlock, to unlock a client: unlock_approval.go).
type ApprovalRequest struct {
	ID            string       `json:"id"`
	Client        string       `json:"client"`
	Role          string       `json:"role"`
	KeyName       string       `json:"key_name"`
	Justification string       `json:"justification"`
	State         string       `json:"state"`
	RequestedBy   record.Actor `json:"requested_by"`
	CreatedAt     time.Time    `json:"created_at"`
	// ExpiresAt ends both a pending request and an unused approval.
	ExpiresAt   time.Time     `json:"expires_at"`
	DecidedBy   *record.Actor `json:"decided_by,omitempty"`
	DecidedAt   time.Time     `json:"decided_at,omitempty"`
	Comment     string        `json:"comment,omitempty"`
	UsedAt      time.Time     `json:"used_at,omitempty"`
	UsedBy      *record.Actor `json:"used_by,omitempty"`
	UsedRequest string        `json:"used_request,omitempty"`
	// KeyID is the key an issuance with this approval creates, recorded
	// before the key is stored: once a key with this id exists at
	// keys/<Client>/<KeyName>, the approval is used even if the state
	// still says approved (see reserveApproval).
	KeyID string `json:"key_id,omitempty"`
	// KeyVersion is set when the approval serves a rotation of the
	// existing key KeyID: the version the rotation creates, which carries
	// the approval's id once committed.
	KeyVersion int `json:"key_version,omitempty"`
	// Kind is empty for a key (issuance or rotation), or
	// requestKindUnlock for the unlock of a client (unlock_approval.go).
	Kind string `json:"kind,omitempty"`
}

// approvalTarget is what an approval is about to be used for: a new key
// (issuance) or a new version of an existing one (rotation).
type approvalTarget struct {
	client, role, name string
	approvalID         string
	// rotation: a new secret of an existing key, not a new key.
	rotation bool
}

// action names the operation in messages.
func (t approvalTarget) action() string {
	if t.rotation {
		return "rotate"
	}
	return "issue"
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
	return getJSON[ApprovalRequest](ctx, s, requestStorageKey(id), "request "+id)
}

func putRequest(ctx context.Context, s logical.Storage, r *ApprovalRequest) error {
	return putJSON(ctx, s, requestStorageKey(r.ID), "request", r)
}

// sameEntity reports whether two actors are the same Vault entity.
func sameEntity(a, b record.Actor) bool {
	return a.EntityID != "" && a.EntityID == b.EntityID
}

// decide approves or denies a pending request.
func (b *apikeysBackend) decide(ctx context.Context, req *logical.Request, id string, approve bool, comment string) (*ApprovalRequest, error) {
	actor := actorFromRequest(req)
	if approve && actor.EntityID == "" {
		return nil, userErrorf("this token has no Vault identity entity (e.g. the root token or a token created without one), so separation of duties cannot be checked: approve with a token from an auth method (userpass, OIDC, ...) whose login maps to an entity")
	}
	defer b.approvals.lock()()
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
	typ := eventlog.RequestDenied
	if approve {
		r.State = requestApproved
		typ = eventlog.RequestApproved
	}
	r.DecidedBy, r.DecidedAt, r.Comment = &actor, now, comment
	if err := putRequest(ctx, s, r); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, typ)
	ev.Client, ev.Key, ev.Role = r.Client, r.KeyName, r.Role
	ev.Details = map[string]string{"approval_id": r.ID, "requested_by": r.RequestedBy.EntityID}
	if r.Kind != "" {
		ev.Details["kind"] = r.Kind
	}
	if comment != "" {
		ev.Details["comment"] = comment
	}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return nil, err
	}
	return r, nil
}

// Using an approval (single use, SPEC §6) takes three steps around the
// key's commit (issuance: the new key; rotation: the key with its new
// version), so that an issuance that fails or is interrupted leaves the
// approval usable and no approval ever serves two keys:
//
//  1. reserveApproval checks the request and reserves it in memory
//     (approvals): a second issuance with the same approval_id is refused
//     while the first is in flight. Nothing is stored, and nothing is
//     logged, so a refused or failed issuance leaves no trace of a use.
//  2. bind records the new key's id (and, for a rotation, the number of the
//     version it creates, which carries the approval id) on the request,
//     still approved, before the key is committed.
//  3. After the commit, complete marks the request used and logs
//     request.used; release (deferred) drops the reservation either way.
//
// A failure or crash before the key commit leaves an approved request whose
// recorded key (or, for a rotation, recorded version) does not exist: the
// approval is usable again (a retry
// records its own key id). A crash after the key commit but before step 3
// leaves an approved request whose recorded key or version exists: it counts as used
// from then on (reads show it used, and the next attempt to use it is
// refused and records the use, attributed to the key's issuer). Marking
// used only after the commit without recording the key first would leave
// that case an approved request next to its key, usable again as soon as
// the key name is free; marking used before the commit would burn the
// approval when the commit fails. The in-memory reservation
// is node-local; only the active node issues keys, and a reservation lost
// with a crashed node is exactly the "before step 3" case above.

// approvals is this node's side of approval requests. Its lock serialises
// every state change of a request (decided once, used once); inUse holds
// the requests an issuance or rotation on this node is using right now, so
// one approval cannot serve two at once. Only the active node issues keys,
// so node-local is enough (see above for a reservation lost in a crash).
type approvals struct {
	mu    sync.Mutex
	inUse map[string]bool // guarded by mu
}

// lock takes the lock and returns its release: defer a.lock()().
func (a *approvals) lock() func() {
	a.mu.Lock()
	return a.mu.Unlock
}

// reserveLocked marks request id in use; the caller holds the lock.
func (a *approvals) reserveLocked(id string) {
	if a.inUse == nil {
		a.inUse = map[string]bool{}
	}
	a.inUse[id] = true
}

// release ends the use of request id.
func (a *approvals) release(id string) {
	defer a.lock()()
	delete(a.inUse, id)
}

// approvalUse is an approval reserved for one issuance in progress.
type approvalUse struct {
	b   *apikeysBackend
	req *logical.Request
	r   *ApprovalRequest
}

// reserveApproval checks the approved request that a role with
// requires_approval needs and reserves it for this issuance or rotation;
// the caller holds the key's lock. A user error refuses the operation. The request must be approved, unexpired, unused, not in
// use by another operation, for exactly this client, role and key name; the
// caller must be the entity that asked for it and never the approver. The
// caller must release a returned reservation.
func (b *apikeysBackend) reserveApproval(ctx context.Context, req *logical.Request, t approvalTarget) (*approvalUse, error) {
	if t.approvalID == "" {
		return nil, userErrorf("role %q requires approval: create a request (vault write <mount>/requests client=%s role=%s name=%s justification=...), have another person approve it at requests/<id>/approve, then %s with approval_id=<id>", t.role, t.client, t.role, t.name, t.action())
	}
	defer b.approvals.lock()()
	s := req.Storage
	r, err := getRequest(ctx, s, t.approvalID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, userErrorf("approval_id %q does not name an approval request", t.approvalID)
	}
	if r.Kind != "" {
		return nil, userErrorf("request %s approves the unlock of client %q, not a key", r.ID, r.Client)
	}
	if b.approvals.inUse[r.ID] {
		return nil, userErrorf("request %s is being used by another issuance or rotation right now; an approval is single-use", r.ID)
	}
	if err := b.settleUse(ctx, s, r); err != nil {
		return nil, err
	}
	now := b.clock.Now()
	switch st := r.effectiveState(now); st {
	case requestApproved:
	case requestUsed:
		return nil, userErrorf("request %s was already used at %s; an approval is single-use, create a new request", r.ID, r.UsedAt.Format(time.RFC3339))
	case requestExpired:
		return nil, userErrorf("request %s expired at %s; create a new request", r.ID, r.ExpiresAt.Format(time.RFC3339))
	default:
		return nil, userErrorf("request %s is %s; it must be approved by another person first", r.ID, st)
	}
	if r.Client != t.client || r.Role != t.role || r.KeyName != t.name {
		return nil, userErrorf("request %s approves key %s/%s under role %q, not %s/%s under role %q", r.ID, r.Client, r.KeyName, r.Role, t.client, t.name, t.role)
	}
	actor := actorFromRequest(req)
	if r.DecidedBy != nil && sameEntity(actor, *r.DecidedBy) {
		return nil, userErrorf("separation of duties: this Vault entity approved request %s and so cannot also %s the key; the requester does", r.ID, t.action())
	}
	if r.RequestedBy.EntityID == "" || actor.EntityID != r.RequestedBy.EntityID {
		return nil, userErrorf("request %s was made by another Vault entity (or by none); only its requester's entity can use the approval", r.ID)
	}
	b.approvals.reserveLocked(r.ID)
	return &approvalUse{b: b, req: req, r: r}, nil
}

// bind records on the request the id of the key about to be committed with
// it and, for a rotation, the version it adds (step 2 above). The request
// stays approved.
func (u *approvalUse) bind(ctx context.Context, s logical.Storage, keyID string, version int) error {
	defer u.b.approvals.lock()()
	u.r.KeyID, u.r.KeyVersion = keyID, version
	return putRequest(ctx, s, u.r)
}

// complete marks the request used by the committed key k and logs the use
// (step 3 above).
func (u *approvalUse) complete(ctx context.Context, s logical.Storage, k *record.Key) error {
	defer u.b.approvals.lock()()
	actor := actorFromRequest(u.req)
	r := u.r
	r.State, r.UsedAt, r.UsedBy, r.UsedRequest, r.KeyID = requestUsed, u.b.clock.Now(), &actor, u.req.ID, k.KeyID
	if err := putRequest(ctx, s, r); err != nil {
		return err
	}
	ev := eventFromRequest(u.req, eventlog.RequestUsed)
	ev.Client, ev.Key, ev.KeyID, ev.Role, ev.Version = r.Client, r.KeyName, k.KeyID, r.Role, r.KeyVersion
	ev.Details = map[string]string{"approval_id": r.ID}
	return u.b.log.Append(ctx, s, ev)
}

// release ends the reservation, whether the issuance succeeded or not.
func (u *approvalUse) release() {
	u.b.approvals.release(u.r.ID)
}

// resolveUse turns r, in memory only, into the used request it really is
// when an issuance or rotation bound it to a key (version) that was
// committed but did not get to mark it used (a crash after the key commit).
// The use of an issuance is attributed to the key's issuer at the key's
// creation; that of a rotation, whose caller is not recorded on the key,
// to the requester at the version's creation. It reports whether it
// changed r.
func (b *apikeysBackend) resolveUse(ctx context.Context, s logical.Storage, r *ApprovalRequest) (bool, error) {
	if r.State != requestApproved || r.KeyID == "" {
		return false, nil
	}
	k, err := b.getKey(ctx, s, r.Client, r.KeyName)
	if err != nil {
		return false, err
	}
	if k == nil || k.KeyID != r.KeyID {
		return false, nil // that issuance never committed its key
	}
	if r.KeyVersion == 0 {
		issuer := k.IssuedBy
		r.State, r.UsedAt, r.UsedBy, r.UsedRequest = requestUsed, k.CreatedAt, &issuer, k.RequestID
		return true, nil
	}
	v := k.Version(r.KeyVersion)
	switch {
	case v != nil && v.ApprovalID == r.ID:
		r.UsedAt = v.CreatedAt
	case v == nil && r.KeyVersion <= k.LatestVersion():
		// The version was dropped from the record (Key.TrimVersions) and can
		// no longer show which approval it carried: count the approval as
		// used rather than risk serving a second secret with it.
		r.UsedAt = b.clock.Now()
	default:
		return false, nil // that rotation never committed its version
	}
	requester := r.RequestedBy
	r.State, r.UsedBy = requestUsed, &requester
	return true, nil
}

// settleUse is resolveUse that also stores the use it finds and logs the
// request.used entry the interrupted issuance did not write. The caller
// holds the approvals lock.
func (b *apikeysBackend) settleUse(ctx context.Context, s logical.Storage, r *ApprovalRequest) error {
	changed, err := b.resolveUse(ctx, s, r)
	if err != nil || !changed {
		return err
	}
	if err := putRequest(ctx, s, r); err != nil {
		return err
	}
	ev := eventlog.Event{Type: eventlog.RequestUsed, Actor: *r.UsedBy, RequestID: r.UsedRequest,
		Client: r.Client, Key: r.KeyName, KeyID: r.KeyID, Role: r.Role,
		Version: r.KeyVersion,
		Details: map[string]string{"approval_id": r.ID, "recorded_after_interruption": "true"}}
	return b.log.Append(ctx, s, ev)
}

func (r *ApprovalRequest) responseData(now time.Time) map[string]interface{} {
	d := map[string]interface{}{
		"approval_id":   r.ID,
		"kind":          requestKind(r),
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
		d["key_id"] = r.KeyID
		if r.KeyVersion > 0 {
			d["key_version"] = r.KeyVersion
		}
	}
	return d
}

// requestKind is the kind of r as answers show it: key or unlock.
func requestKind(r *ApprovalRequest) string {
	if r.Kind == "" {
		return "key"
	}
	return r.Kind
}
