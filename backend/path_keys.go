package backend

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

const pathKeysHelpSyn = `Issue, read and revoke a client's managed API key.`
const pathKeysHelpDesc = `
Writing to keys/<client>/<name> issues a new key under a role. The secret is
returned once, as "key"; later reads return it only when the role makes keys
retrievable (by default for internal clients). Only an HMAC of the key is
stored for verification.

The key rotates on its role's schedule; reads return "ttl" (seconds until the
next scheduled rotation, but at most the role's grace_period less a margin) so
Vault Agent re-fetches right after any rotation, scheduled or by hand.
Writing to an existing key updates its purpose and metadata, narrows its
scopes (any subset of its role's scopes; never wider than the role) and
sets, extends or shortens its hard expiry with expires_at (RFC 3339, in the
future; expires_at=none removes it). Every change is a key.updated entry in
the lifecycle log with the fields' values before and after.

Deleting revokes every version of the key at once. Writing role=<role> to a
revoked key's path re-issues the name: a new key (new key_id, fresh
versions, a new secret returned once) under the same issuance rules, so
whatever reads this path keeps working. The revoked key is archived under its
key_id and listed in the new key's predecessors; its secrets keep answering
revoked.
`

const pathKeysListHelpSyn = `List a client's keys.`
const pathKeysListHelpDesc = `Lists the names of the keys of one client, revoked ones included.`

func keyPathFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"client": {Type: framework.TypeString, Description: "Name of the client that holds the key.", Required: true},
		"name":   {Type: framework.TypeString, Description: "Name of the key within the client: " + record.NameRule + ".", Required: true},
	}
}

func (b *apikeysBackend) pathKeys() []*framework.Path {
	issueFields := keyPathFields()
	issueFields["role"] = &framework.FieldSchema{Type: framework.TypeString, Description: "Role to issue the key under. Required when issuing."}
	issueFields["scopes"] = &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: "Scopes of the key, a subset of the role's scopes (default: all of the role's scopes)."}
	issueFields["purpose"] = &framework.FieldSchema{Type: framework.TypeString, Description: "Why the key exists (shown in the inventory)."}
	issueFields["metadata"] = &framework.FieldSchema{Type: framework.TypeKVPairs, Description: "Arbitrary non-secret key=value pairs."}
	issueFields["approval_id"] = &framework.FieldSchema{Type: framework.TypeString, Description: "Approved request (the approval_id of requests/<id>); required for roles with requires_approval, refused for others."}
	issueFields["expires_at"] = &framework.FieldSchema{Type: framework.TypeString, Description: "Hard expiry of the key (RFC 3339, in the future), or \"none\" to remove it on update. When the role sets key_lifetime, at most one lifetime from now (on update too), and never \"none\"."}

	return []*framework.Path{
		{
			Pattern: "keys/(?P<client>[^/]+)/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "client-keys",
			},
			Fields: map[string]*framework.FieldSchema{
				"client": {Type: framework.TypeString, Description: "Name of the client.", Required: true},
				"after":  {Type: framework.TypeString, Description: "List names after this one (the previous page's next)."},
				"limit":  {Type: framework.TypeInt, Description: "Most names to return, 1-1000; not set: all names."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathKeysList, Responses: keysListResponse},
			},
			HelpSynopsis:    pathKeysListHelpSyn,
			HelpDescription: pathKeysListHelpDesc,
		},
		{
			Pattern: "keys/(?P<client>[^/]+)/(?P<name>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "key",
			},
			Fields:         issueFields,
			ExistenceCheck: b.keyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathKeyRead, Responses: okResponse(keyResponseFields())},
				logical.CreateOperation: &framework.PathOperation{
					Callback:     b.pathKeyIssue,
					Responses:    okResponse(keyResponseFields()),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "issue"},
				},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathKeyUpdate, Responses: okResponse(keyResponseFields())},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:     b.pathKeyDelete,
					Responses:    okResponse(keyRevokeResponseFields()),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "revoke"},
				},
			},
			HelpSynopsis:    pathKeysHelpSyn,
			HelpDescription: pathKeysHelpDesc,
		},
	}
}

func (b *apikeysBackend) keyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	client, name := d.Get("client").(string), d.Get("name").(string)
	if record.ValidateName("client", client) != nil || record.ValidateName("key", name) != nil {
		return false, nil
	}
	// An issuance reads the key again under its lock; the note spares it
	// that storage round trip while nothing has written the key since
	// (verifycache/absence.go).
	fence := b.cache.verify.KeyFence(client, name)
	k, err := b.getKey(ctx, req.Storage, client, name)
	if err == nil && k == nil {
		b.cache.verify.NoteKeyAbsent(req.ID, client, name, fence)
	} else {
		b.cache.verify.ForgetKeyAbsent(req.ID)
	}
	return k != nil, err
}

func (b *apikeysBackend) pathKeysList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client := d.Get("client").(string)
	if err := record.ValidateName("client", client); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	after := d.Get("after").(string)
	if after != "" {
		if err := record.ValidateName("key", after); err != nil {
			return nil, userErrorf("after: %s", err.Error())
		}
	}
	limit, paged := d.GetOk("limit")
	if paged && (limit.(int) < 1 || limit.(int) > maxKeysListPage) {
		return nil, userErrorf("limit must be between 1 and %d (got %d)", maxKeysListPage, limit.(int))
	}
	// Names only: one storage listing, no key record is read.
	names, err := b.listClientKeys(ctx, req.Storage, client)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	names = names[sort.Search(len(names), func(i int) bool { return names[i] > after }):]
	var next string
	if paged && len(names) > limit.(int) {
		names = names[:limit.(int)]
		next = names[len(names)-1]
	}
	resp := logical.ListResponse(names)
	if next != "" {
		resp.Data["next"] = next
	}
	return resp, nil
}

// maxKeysListPage bounds a page of a client's key names.
const maxKeysListPage = 1000

var keysListResponse = okResponse(map[string]*framework.FieldSchema{
	"keys": field(framework.TypeStringSlice, "Names of the client's keys, in order."),
	"next": field(framework.TypeString, "Value of after for the next page, when limit was given and more names follow."),
})

// keyNames validates and returns the client and key names of a request.
func keyNames(d *framework.FieldData) (string, string, error) {
	client, name := d.Get("client").(string), d.Get("name").(string)
	if err := record.ValidateName("client", client); err != nil {
		return "", "", err
	}
	if err := record.ValidateName("key", name); err != nil {
		return "", "", err
	}
	return client, name, nil
}

func (b *apikeysBackend) pathKeyIssue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	clientName, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	in := issueInput{
		clientName: clientName,
		name:       name,
		roleName:   strings.TrimSpace(d.Get("role").(string)),
		purpose:    d.Get("purpose").(string),
		approvalID: strings.TrimSpace(d.Get("approval_id").(string)),
	}
	if v, ok := d.GetOk("scopes"); ok {
		in.scopes = scopes.Normalize(v.([]string))
		in.scopesGiven = true
	}
	if v, ok := d.GetOk("metadata"); ok {
		in.metadata = v.(map[string]string)
	}
	if v, ok := d.GetOk("expires_at"); ok {
		at, err := parseExpiresAt(v.(string), b.clock.Now())
		if err != nil {
			return nil, err
		}
		in.expiresAt = &at
	}
	return b.issueKey(ctx, req, in)
}

func (b *apikeysBackend) pathKeyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	k, err := b.getKey(ctx, req.Storage, client, name)
	if err != nil || k == nil {
		return nil, err
	}
	data, role, c, err := b.keyData(ctx, req.Storage, k)
	if err != nil {
		return nil, err
	}
	if k.Retrievable && role != nil {
		// The role's current setting decides: turning retrievable off
		// stops reads at once, not only for keys issued afterwards.
		// A version that existed when retrieval was last turned off is
		// never returned, even once retrieval is back on.
		if cur := k.Current(); c != nil && role.RetrievableFor(c.Type) && cur != nil && cur.Secret != "" && role.Readable(cur) {
			data["key"] = cur.Secret
		}
	}
	return &logical.Response{Data: data}, nil
}

// keyData loads what a key's answer needs besides the key (the mount's
// config, the key's role and client, either of which may be gone) and
// renders it; the role and client are returned for callers that add to the
// answer.
func (b *apikeysBackend) keyData(ctx context.Context, s logical.Storage, k *record.Key) (map[string]interface{}, *record.Role, *record.Client, error) {
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	role, err := b.getRole(ctx, s, k.Role)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := b.getClient(ctx, s, k.Client)
	if err != nil {
		return nil, nil, nil, err
	}
	return b.keyResponse(cfg, role, c, k, b.clock.Now()), role, c, nil
}

// keyOwner is the owner a key answers with: its client's current owner
// (keys inherit it, SPEC §6), or the owner recorded at issuance when the
// client record is gone.
func keyOwner(k *record.Key, c *record.Client) string {
	if c != nil && c.Owner != "" {
		return c.Owner
	}
	return k.Owner
}

// keyResponse renders a key; c is its client (nil if unknown).
func (b *apikeysBackend) keyResponse(cfg *record.Config, role *record.Role, c *record.Client, k *record.Key, now time.Time) map[string]interface{} {
	versions := make([]map[string]interface{}, 0, len(k.Versions))
	for _, v := range k.Versions {
		vm := map[string]interface{}{
			"version":    v.Version,
			"state":      v.State,
			"created_at": v.CreatedAt,
		}
		if !v.ActivatedAt.IsZero() {
			vm["activated_at"] = v.ActivatedAt
		}
		if v.State == record.StatePrevious {
			vm["grace_ends_at"] = v.GraceEndsAt
		}
		if !v.RetiredAt.IsZero() {
			vm["retired_at"] = v.RetiredAt
		}
		if v.ApprovalID != "" {
			vm["approval_id"] = v.ApprovalID
		}
		if t := b.cache.usage.VersionLastVerified(k, v.Version); !t.IsZero() {
			vm["last_verified_at"] = t
		}
		if v.State == record.StateRevoked {
			vm["revoked_at"] = v.RevokedAt
			vm["revoke_reason"] = v.RevokeReason
		}
		versions = append(versions, vm)
	}
	data := map[string]interface{}{
		"key_id":           k.KeyID,
		"client":           k.Client,
		"name":             k.Name,
		"role":             k.Role,
		"owner":            keyOwner(k, c),
		"scopes":           nonNil(k.Scopes),
		"environment":      k.Environment,
		"purpose":          k.Purpose,
		"metadata":         record.MetadataPairs(k.Metadata), // a list, not an object: see record/agent_ttl.go
		"retrievable":      k.Retrievable,
		"leased":           k.Leased,
		"state":            k.State(now),
		"issued_by":        k.IssuedBy,
		"request_id":       k.RequestID,
		"approval_id":      k.ApprovalID,
		"created_at":       k.CreatedAt,
		"last_rotated_at":  k.LastRotatedAt,
		"versions":         versions,
		"expires_at":       optionalTime(k.ExpiresAt),
		"next_rotation_at": optionalTime(k.NextRotationAt),
		"last_used_at":     optionalTime(b.cache.usage.LastUsed(k)),
		"usage":            b.cache.usage.Summary(k),
	}
	data["disabled"] = k.Disabled
	if k.Disabled {
		data["disabled_at"] = k.DisabledAt
		data["disabled_reason"] = k.DisabledReason
		data["disabled_by"] = k.DisabledBy
	}
	if len(k.Predecessors) > 0 {
		data["predecessors"] = k.Predecessors
	}
	if cur := k.Current(); cur != nil {
		data["version"] = cur.Version
	} else {
		data["version"] = k.LatestVersion()
	}
	if role != nil {
		data["effective_scopes"] = nonNil(scopes.Intersect(k.Scopes, role.Scopes))
		data["audiences"] = nonNil(role.Audiences)
		pol := role.RotationPolicy(cfg)
		data["rotation_period"] = record.Secs(pol.Period)
		if pol.Cron != "" {
			data["rotation_schedule"] = pol.Cron
		}
	}
	// Vault Agent re-reads the key when its ttl runs out (record.AgentTTL).
	grace := cfg.DefaultGracePeriod
	if role != nil {
		grace = role.EffectiveGracePeriod(cfg)
	}
	data["ttl"] = record.AgentTTL(k, grace, now)
	// As key reads and the engine do, the role's current setting counts.
	data["automatic_rotation"] = !k.Leased && record.AutoRotates(k) && !role.ForbidsRetrieval(c)
	return data
}

func optionalTime(t time.Time) interface{} {
	if t.IsZero() {
		return nil
	}
	return t
}

func (b *apikeysBackend) pathKeyUpdate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if _, ok := d.GetOk("role"); ok {
		// A role names an issuance: allowed only over a revoked key, whose
		// name it re-issues (issueKey decides under the locks).
		k, err := b.getKey(ctx, req.Storage, client, name)
		if err != nil {
			return nil, err
		}
		if k != nil && !k.Revoked {
			return nil, userErrorf("role: key %s/%s already exists and is not revoked; its role cannot change. To replace its secret use keys/%s/%s/rotate; to issue another key choose a new name (a revoked key's name can be re-issued with role)", client, name, client, name)
		}
		return b.pathKeyIssue(ctx, req, d)
	}
	if _, ok := d.GetOk("approval_id"); ok {
		return nil, userErrorf("approval_id: key %s/%s already exists; approval_id applies to an issuance (or a re-issue of a revoked key, with role)", client, name)
	}
	var u keyUpdate
	if v, ok := d.GetOk("purpose"); ok {
		p := v.(string)
		u.purpose = &p
	}
	if v, ok := d.GetOk("metadata"); ok {
		u.metadata = v.(map[string]string)
		if u.metadata == nil {
			u.metadata = map[string]string{}
		}
	}
	if v, ok := d.GetOk("scopes"); ok {
		u.scopes = scopes.Normalize(v.([]string))
		if u.scopes == nil {
			u.scopes = []string{}
		}
	}
	if v, ok := d.GetOk("expires_at"); ok {
		at, err := parseExpiresAt(v.(string), b.clock.Now())
		if err != nil {
			return nil, err
		}
		u.expiresAt = &at
	}
	if u.empty() {
		return nil, userErrorf("nothing to update: give purpose, metadata, scopes or expires_at (or role, to re-issue a revoked key)")
	}
	k, err := b.updateKey(ctx, req, client, name, u)
	if err != nil {
		return nil, err
	}
	data, _, _, err := b.keyData(ctx, req.Storage, k)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathKeyDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	k, revoked, err := b.revokeKey(ctx, req, client, name, 0, "deleted")
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, nil
	}
	return &logical.Response{Data: map[string]interface{}{
		"key_id":           k.KeyID,
		"client":           k.Client,
		"state":            record.StateRevoked,
		"revoked_versions": revoked,
	}}, nil
}
