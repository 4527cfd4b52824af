package backend

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathRequestsHelpSyn = `Request, list, approve and deny key issuances and rotations that need approval.`
const pathRequestsHelpDesc = `
Roles with requires_approval issue keys, and rotate them by hand, only
against an approved request (separation of duties). Writing here creates a
pending request for one key: client, role, key name and a justification; the
answer's approval_id names it (vault write -field=approval_id ...). Another
person approves it at requests/<approval_id>/approve (or denies it at
requests/<approval_id>/deny); the approving Vault entity must differ from the
requesting one, and tokens without an entity (such as the root token) cannot
approve. The requester then issues the key at keys/<client>/<name> with
approval_id=<approval_id>, or, for an existing key, rotates it at
keys/<client>/<name>/rotate with approval_id=<approval_id>. An approval is
single-use and expires with the request (ttl, default 24h, at most 7d). It is
used up only when the key or its new version is stored: an issuance or
rotation that is refused or fails leaves it approved, to be used again.

kind=unlock requests the unlock of a client locked by an automated
require_reapproval response (see responses/): give client and
justification; once another person approved it, the requester unlocks with
clients/<client>/unlock approval_id=<approval_id>.

A request is kept approval_request_retention (see config; default 90d, 0:
forever) after its expiry, then deleted by the periodic function; its
request.* entries and a requests.pruned entry stay in the lifecycle log.
`
const pathRequestHelpSyn = `Read one approval request.`
const pathRequestHelpDesc = `Shows the request (approval_id), its state (pending, approved, denied, used, expired), who asked, who decided and when, and for a used request who used it, when, and the key_id of the key issued with it (with key_version, the version a rotation created with it).`
const pathRequestDecideHelpSyn = `Approve or deny a pending approval request.`
const pathRequestDecideHelpDesc = `
Approving needs a token with a Vault identity entity other than the
requester's. Denying may be done by anyone with access, including the
requester (to withdraw a request). Both are recorded in the lifecycle log.
`

func (b *apikeysBackend) pathRequests() []*framework.Path {
	idField := map[string]*framework.FieldSchema{
		"id":      {Type: framework.TypeString, Description: "The request's approval_id (returned when it was created).", Required: true},
		"comment": {Type: framework.TypeString, Description: "Optional note recorded with the decision."},
	}
	decide := func(suffix, verb string, approve bool) *framework.Path {
		return &framework.Path{
			Pattern:      "requests/(?P<id>[^/]+)/" + suffix + "$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: verb, OperationSuffix: "request"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return b.pathRequestDecide(ctx, req, d, approve)
				}, Responses: okResponse(requestResponseFields)},
			},
			HelpSynopsis:    pathRequestDecideHelpSyn,
			HelpDescription: pathRequestDecideHelpDesc,
		}
	}
	return []*framework.Path{
		{
			Pattern:      "requests/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "requests"},
			Fields: map[string]*framework.FieldSchema{
				"kind":          {Type: framework.TypeString, Description: "key (default): approve issuing or rotating a key; unlock: approve unlocking a client locked by a require_reapproval response (give only client and justification).", AllowedValues: []interface{}{"key", requestKindUnlock}},
				"client":        {Type: framework.TypeString, Description: "Client the key is for, or to unlock."},
				"role":          {Type: framework.TypeString, Description: "Role (with requires_approval) to issue the key under."},
				"name":          {Type: framework.TypeString, Description: "Name of the key to issue (keys/<client>/<name>)."},
				"justification": {Type: framework.TypeString, Description: "Why the key is needed; shown to the approver."},
				"ttl":           {Type: framework.TypeDurationSecond, Description: "How long the request and its approval stay valid (1m to 7d, default 24h)."},
				"state":         {Type: framework.TypeString, Description: "When listing: only requests in this state (pending, approved, denied, used, expired)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRequestCreate, Responses: okResponse(requestResponseFields), DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "create"}},
				logical.ListOperation:   &framework.PathOperation{Callback: b.pathRequestsList, Responses: okResponse(requestsListResponseFields)},
			},
			HelpSynopsis:    pathRequestsHelpSyn,
			HelpDescription: pathRequestsHelpDesc,
		},
		{
			Pattern:      "requests/(?P<id>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "request"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathRequestRead, Responses: okResponse(requestResponseFields)},
			},
			HelpSynopsis:    pathRequestHelpSyn,
			HelpDescription: pathRequestHelpDesc,
		},
		decide("approve", "approve", true),
		decide("deny", "deny", false),
	}
}

func (b *apikeysBackend) pathRequestCreate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	clientName := strings.TrimSpace(d.Get("client").(string))
	roleName := strings.TrimSpace(d.Get("role").(string))
	keyName := strings.TrimSpace(d.Get("name").(string))
	justification := strings.TrimSpace(d.Get("justification").(string))
	if req.EntityID == "" {
		// Separation of duties compares entities: a request without one
		// could be approved by its own author under another token.
		return nil, userErrorf("separation of duties: this token has no Vault identity entity (e.g. the root token); request approval with a token from an auth method login so the approver can be checked against you")
	}
	ttl := defaultApprovalTTL
	if v, ok := d.GetOk("ttl"); ok {
		ttl = time.Duration(v.(int)) * time.Second
		if ttl < minApprovalTTL || ttl > maxApprovalTTL {
			return nil, userErrorf("ttl must be between %s and %s (got %s)", minApprovalTTL, maxApprovalTTL, ttl)
		}
	}
	switch kind := strings.TrimSpace(d.Get("kind").(string)); kind {
	case "", "key":
	case requestKindUnlock:
		r, err := b.createUnlockRequest(ctx, req, clientName, roleName, keyName, justification, ttl)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: r.responseData(b.clock.Now())}, nil
	default:
		return nil, userErrorf("kind must be key or unlock (got %q)", kind)
	}
	for _, c := range []struct{ field, kind, v string }{{"client", "client", clientName}, {"role", "role", roleName}, {"name", "key", keyName}} {
		if c.v == "" {
			return nil, userErrorf("%s is required: a request names the client, role and key name (name) it approves", c.field)
		}
		if err := record.ValidateName(c.kind, c.v); err != nil {
			return nil, userErrorf("%s", err.Error())
		}
	}
	if justification == "" {
		return nil, userErrorf("justification is required: say why the key is needed, for the approver")
	}
	s := req.Storage
	c, err := b.getClient(ctx, s, clientName)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, userErrorf("client %q does not exist", clientName)
	}
	if c.Status != record.ClientActive {
		return nil, userErrorf("client %q is %s; keys cannot be issued to it", clientName, c.Status)
	}
	role, err := b.getRole(ctx, s, roleName)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, userErrorf("role %q does not exist", roleName)
	}
	if !role.RequiresApproval {
		return nil, userErrorf("role %q does not require approval (requires_approval=false); issue the key directly", roleName)
	}
	id, err := newRequestID()
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	r := &ApprovalRequest{
		ID: id, Client: clientName, Role: roleName, KeyName: keyName, Justification: justification,
		State: requestPending, RequestedBy: actorFromRequest(req), CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := b.storeNewRequest(ctx, s, r); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.RequestCreated)
	ev.Client, ev.Key, ev.Role = clientName, keyName, roleName
	ev.Details = map[string]string{"approval_id": id, "expires_at": r.ExpiresAt.Format(time.RFC3339)}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: r.responseData(now)}, nil
}

func (b *apikeysBackend) pathRequestsList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	state := strings.TrimSpace(d.Get("state").(string))
	switch state {
	case "", requestPending, requestApproved, requestDenied, requestUsed, requestExpired:
	default:
		return nil, userErrorf("state must be one of pending, approved, denied, used, expired (got %q)", state)
	}
	ids, err := req.Storage.List(ctx, storageRequestPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	now := b.clock.Now()
	keys := []string{}
	info := map[string]interface{}{}
	for _, id := range ids {
		r, err := getRequest(ctx, req.Storage, id)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		// A request whose issuance was interrupted after its key was
		// stored is listed as the used request it is.
		if _, err := b.resolveUse(ctx, req.Storage, r); err != nil {
			return nil, err
		}
		if state != "" && r.effectiveState(now) != state {
			continue
		}
		keys = append(keys, id)
		info[id] = map[string]interface{}{
			"approval_id": r.ID, "kind": requestKind(r), "client": r.Client, "role": r.Role, "name": r.KeyName,
			"state": r.effectiveState(now), "expires_at": r.ExpiresAt, "requested_by": r.RequestedBy.DisplayName,
		}
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

func (b *apikeysBackend) pathRequestRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := getRequest(ctx, req.Storage, d.Get("id").(string))
	if err != nil || r == nil {
		return nil, err
	}
	if _, err := b.resolveUse(ctx, req.Storage, r); err != nil {
		return nil, err
	}
	return &logical.Response{Data: r.responseData(b.clock.Now())}, nil
}

func (b *apikeysBackend) pathRequestDecide(ctx context.Context, req *logical.Request, d *framework.FieldData, approve bool) (*logical.Response, error) {
	r, err := b.decide(ctx, req, d.Get("id").(string), approve, strings.TrimSpace(d.Get("comment").(string)))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: r.responseData(b.clock.Now())}, nil
}

var requestResponseFields = map[string]*framework.FieldSchema{
	"approval_id":   field(framework.TypeString, "Id of the approval request."),
	"kind":          field(framework.TypeString, "key (issue or rotate a key) or unlock (unlock a client)."),
	"client":        field(framework.TypeString, "Client the key is for."),
	"role":          field(framework.TypeString, "Role the key is issued under."),
	"name":          field(framework.TypeString, "Name of the key."),
	"justification": field(framework.TypeString, "Why the key is needed."),
	"state":         field(framework.TypeString, "pending, approved, denied, used or expired."),
	"requested_by":  field(framework.TypeMap, "Who asked: type, entity_id, display_name, accessor."),
	"created_at":    field(framework.TypeString, "When the request was made (RFC 3339)."),
	"expires_at":    field(framework.TypeString, "When the request expires (RFC 3339)."),
	"decided_by":    field(framework.TypeMap, "Who decided: type, entity_id, display_name, accessor."),
	"decided_at":    field(framework.TypeString, "When it was decided (RFC 3339)."),
	"comment":       field(framework.TypeString, "Note given with the decision."),
	"used_by":       field(framework.TypeMap, "Who used the approval to issue or rotate."),
	"used_at":       field(framework.TypeString, "When it was used (RFC 3339)."),
	"key_id":        field(framework.TypeString, "Id of the key issued or rotated with it."),
	"key_version":   field(framework.TypeInt, "Version created with it."),
}

var requestsListResponseFields = map[string]*framework.FieldSchema{
	"keys":     field(framework.TypeStringSlice, "Ids of the requests."),
	"key_info": field(framework.TypeMap, "Summary of each request by id."),
}
