package backend

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathClientLockHelpSyn = `Lock a client: suspend all its keys at once (incident lock-down).`
const pathClientLockHelpDesc = `
From the moment this call returns, verify answers "locked" for every key of
the client, and no key can be issued to it. Nothing is revoked: unlock
restores the keys as they were. Both are recorded in the lifecycle log with
the reason given.
`
const pathClientUnlockHelpSyn = `Unlock a locked client: its keys verify again.`
const pathClientUnlockHelpDesc = `
Restores a locked client to active. De-provisioned clients cannot be
unlocked. A client locked by an automated require_reapproval response
unlocks only with approval_id: an unlock request (requests, kind=unlock)
that another person approved, used by its requester.
`
const pathClientRevocationsHelpSyn = `The client's revocation list.`
const pathClientRevocationsHelpDesc = `
Every revoked key and version of the client (managed and leased) with its
key_id, version, time, reason and actor, oldest first, plus the
de-provisioning of the client itself when it happened. Rotation retirements
are not revocations and are not listed.

Revoked leased keys are listed until they are purged, leased_key_retention
(see config; default 7d, 0: never) after they died; like expired
certificates dropped from a CRL, a purged key is no longer accepted
anywhere, and its revocation stays in the lifecycle log (key.revoked, then
keys.purged naming its key_id). "leased_key_retention" in the answer says
how far back leased revocations go.

A revoked key whose name was re-issued is archived and stays listed
archived_key_retention (see config; default 90d, 0: never) after the
re-issue; then it is deleted (archived_keys.pruned naming its key_id).
`

func (b *apikeysBackend) pathClientOps() []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name":   {Type: framework.TypeString, Description: "Name of the client.", Required: true},
		"reason": {Type: framework.TypeString, Description: "Why; recorded in the lifecycle log (e.g. an incident id)."},
	}
	unlockFields := map[string]*framework.FieldSchema{
		"name":        fields["name"],
		"reason":      fields["reason"],
		"approval_id": {Type: framework.TypeString, Description: "Approved unlock request (requests, kind=unlock); required only for a client locked by a require_reapproval response."},
	}
	statusPath := func(suffix, status, syn, desc string) *framework.Path {
		f := fields
		if status == record.ClientActive {
			f = unlockFields
		}
		return &framework.Path{
			Pattern:      "clients/(?P<name>[^/]+)/" + suffix + "$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: suffix, OperationSuffix: "client"},
			Fields:       f,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return b.pathClientSetStatus(ctx, req, d, status)
				}, Responses: okResponse(clientResponseFields())},
			},
			HelpSynopsis:    syn,
			HelpDescription: desc,
		}
	}
	return []*framework.Path{
		statusPath("lock", record.ClientLocked, pathClientLockHelpSyn, pathClientLockHelpDesc),
		statusPath("unlock", record.ClientActive, pathClientUnlockHelpSyn, pathClientUnlockHelpDesc),
		{
			Pattern:      "clients/(?P<name>[^/]+)/revocations$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "read", OperationSuffix: "client-revocations"},
			Fields:       map[string]*framework.FieldSchema{"name": fields["name"]},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathClientRevocations, Responses: okResponse(clientRevocationsResponseFields)},
			},
			HelpSynopsis:    pathClientRevocationsHelpSyn,
			HelpDescription: pathClientRevocationsHelpDesc,
		},
	}
}

func (b *apikeysBackend) pathClientSetStatus(ctx context.Context, req *logical.Request, d *framework.FieldData, status string) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	reason := strings.TrimSpace(d.Get("reason").(string))
	if reason == "" {
		reason = map[string]string{record.ClientLocked: "locked", record.ClientActive: "unlocked"}[status]
	}
	ch := clientStatusChange{status: status, reason: reason}
	if status == record.ClientActive {
		ch.approvalID = d.Get("approval_id").(string)
	}
	res, err := b.changeClientStatus(ctx, req, req.Storage, name, ch)
	if err != nil {
		return nil, err
	}
	if res.client == nil {
		return nil, userErrorf("client %q does not exist", name)
	}
	resp := &logical.Response{Data: clientData(res.client)}
	if res.unchanged {
		// Repeating a lock or unlock changes nothing and logs nothing.
		resp.AddWarning("client " + name + " is already " + status)
	}
	return resp, nil
}

func (b *apikeysBackend) pathClientRevocations(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	s := req.Storage
	c, err := b.getClient(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, userErrorf("client %q does not exist", name)
	}
	type row struct {
		at   time.Time
		data map[string]interface{}
	}
	var rows []row
	names, err := b.listClientKeys(ctx, s, name)
	if err != nil {
		return nil, err
	}
	addKey := func(k *record.Key) {
		add := func(r record.RevokedVersion) {
			rows = append(rows, row{r.RevokedAt, map[string]interface{}{
				"key_id":     k.KeyID,
				"name":       k.Name,
				"role":       k.Role,
				"version":    r.Version,
				"revoked_at": r.RevokedAt,
				"reason":     r.Reason,
				"actor":      r.RevokedBy,
				"leased":     k.Leased,
				"whole_key":  k.Revoked,
			}})
		}
		// Revoked versions trimmed off the record first (older), then
		// those still on it.
		for _, r := range k.TrimmedRevocations {
			add(r)
		}
		for _, v := range k.Versions {
			if v.State == record.StateRevoked {
				add(record.RevokedVersion{Version: v.Version, RevokedAt: v.RevokedAt, Reason: v.RevokeReason, RevokedBy: v.RevokedBy})
			}
		}
	}
	for _, kn := range names {
		k, err := b.getKey(ctx, s, name, kn)
		if err != nil {
			return nil, err
		}
		if k == nil {
			continue
		}
		// Revoked keys whose name was re-issued stay listed.
		olds, err := b.predecessorKeys(ctx, s, k)
		if err != nil {
			return nil, err
		}
		for _, old := range olds {
			addKey(old)
		}
		addKey(k)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	list := make([]map[string]interface{}, 0, len(rows))
	keyIDs := map[string]bool{}
	for _, r := range rows {
		list = append(list, r.data)
		keyIDs[r.data["key_id"].(string)] = true
	}
	ids := make([]string, 0, len(keyIDs))
	for id := range keyIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"client":          name,
		"status":          c.Status,
		"revocations":     list,
		"count":           len(list),
		"revoked_key_ids": ids,
		// Leased keys leave the list when purged (lease_purge.go).
		"leased_key_retention": record.Secs(cfg.LeasedKeyRetention),
	}
	if c.Status == record.ClientDeprovisioned {
		data["deprovisioned_at"] = c.StatusChangedAt
		data["deprovisioned_by"] = c.StatusChangedBy
	}
	return &logical.Response{Data: data}, nil
}

var clientRevocationsResponseFields = map[string]*framework.FieldSchema{
	"client":               field(framework.TypeString, "Name of the client."),
	"status":               field(framework.TypeString, "Status of the client."),
	"deprovisioned_at":     field(framework.TypeString, "When the client was deprovisioned (RFC 3339)."),
	"deprovisioned_by":     field(framework.TypeMap, actorDesc),
	"leased_key_retention": field(framework.TypeDurationSecond, "Seconds revoked leased keys stay on the list."),
	"count":                field(framework.TypeInt, "Number of revocations listed."),
	"revocations":          field(framework.TypeSlice, "The revocations: key_id, name, role, version, whole_key, reason, actor, revoked_at, leased."),
	"revoked_key_ids":      field(framework.TypeStringSlice, "Key ids revoked, for deny lists."),
}
