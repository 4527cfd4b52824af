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

const pathInventoryHelpSyn = `List every key with its owner, issuer, scopes, lifetime and use.`
const pathInventoryHelpDesc = `
The inventory lists every key of the mount (managed and leased) with issuer,
owner, client, role, scopes, environment, created, expires, next rotation,
last used and state, plus de-provisioned clients as tombstones. Filters
narrow the listing: client, role, owner, state, expiring_within (keys whose
expiry or next rotation falls within the duration) and unused_for (keys not
verified for at least the duration, never-used keys counted from creation).
Dead leased keys (revoked or expired) are listed until they are purged,
leased_key_retention after they died (see config and tidy).
`

func (b *apikeysBackend) pathInventory() []*framework.Path {
	return []*framework.Path{{
		Pattern: "inventory/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "inventory",
		},
		Fields: map[string]*framework.FieldSchema{
			"client":          {Type: framework.TypeString, Description: "Only keys of this client."},
			"role":            {Type: framework.TypeString, Description: "Only keys issued under this role."},
			"owner":           {Type: framework.TypeString, Description: "Only keys of clients with this owner."},
			"state":           {Type: framework.TypeString, Description: "Only keys in this state: active, pending, revoked, expired, retired, locked."},
			"expiring_within": {Type: framework.TypeDurationSecond, Description: "Only keys that expire or are due to rotate within this duration."},
			"unused_for":      {Type: framework.TypeDurationSecond, Description: "Only keys not used for at least this duration."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathInventoryRead, Responses: okResponse(inventoryResponseFields)},
		},
		HelpSynopsis:    pathInventoryHelpSyn,
		HelpDescription: pathInventoryHelpDesc,
	}}
}

type inventoryFilter struct {
	client, role, owner, state string
	expiringWithin, unusedFor  time.Duration
}

func (f inventoryFilter) match(b *apikeysBackend, k *record.Key, owner, state string, now time.Time) bool {
	if f.client != "" && k.Client != f.client {
		return false
	}
	if f.role != "" && k.Role != f.role {
		return false
	}
	if f.owner != "" && owner != f.owner {
		return false
	}
	if f.state != "" && state != f.state {
		return false
	}
	if f.expiringWithin > 0 {
		limit := now.Add(f.expiringWithin)
		soon := (!k.ExpiresAt.IsZero() && k.ExpiresAt.Before(limit)) ||
			(!k.NextRotationAt.IsZero() && k.NextRotationAt.Before(limit))
		if !soon || k.Revoked {
			return false
		}
	}
	if f.unusedFor > 0 {
		last := b.cache.usage.LastUsed(k)
		if last.IsZero() {
			last = k.CreatedAt
		}
		if now.Sub(last) < f.unusedFor {
			return false
		}
	}
	return true
}

func (b *apikeysBackend) pathInventoryRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	f := inventoryFilter{
		client:         strings.TrimSpace(d.Get("client").(string)),
		role:           strings.TrimSpace(d.Get("role").(string)),
		owner:          strings.TrimSpace(d.Get("owner").(string)),
		state:          strings.TrimSpace(d.Get("state").(string)),
		expiringWithin: time.Duration(d.Get("expiring_within").(int)) * time.Second,
		unusedFor:      time.Duration(d.Get("unused_for").(int)) * time.Second,
	}
	switch f.state {
	case "", record.StateActive, record.StatePending, record.StateRevoked, record.StateExpired, record.StateRetired, record.StateLocked:
	default:
		return nil, userErrorf("state must be one of active, pending, revoked, expired, retired, locked (got %q)", f.state)
	}
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, req.Storage, name) })
	items := []map[string]interface{}{}
	err = b.forEachKey(ctx, req.Storage, func(k *record.Key) (bool, error) {
		c, err := clientOf(k.Client)
		if err != nil {
			return false, err
		}
		state := k.State(now)
		if c != nil && c.Status == record.ClientLocked && state == record.StateActive {
			state = record.StateLocked
		}
		owner := keyOwner(k, c)
		if !f.match(b, k, owner, state, now) {
			return true, nil
		}
		item := map[string]interface{}{
			"key_id":           k.KeyID,
			"client":           k.Client,
			"name":             k.Name,
			"role":             k.Role,
			"owner":            owner,
			"scopes":           nonNil(k.Scopes),
			"environment":      k.Environment,
			"issued_by":        k.IssuedBy,
			"approval_id":      k.ApprovalID,
			"created_at":       k.CreatedAt,
			"expires_at":       optionalTime(k.ExpiresAt),
			"next_rotation_at": optionalTime(k.NextRotationAt),
			"last_rotated_at":  k.LastRotatedAt,
			"last_used_at":     optionalTime(b.cache.usage.LastUsed(k)),
			"state":            state,
			"leased":           k.Leased,
			"version":          k.LatestVersion(),
		}
		if cfg.ReviewPeriod > 0 && !k.Revoked {
			last := b.cache.usage.LastUsed(k)
			if last.IsZero() {
				last = k.CreatedAt
			}
			item["needs_review"] = now.Sub(last) >= cfg.ReviewPeriod
		}
		items = append(items, item)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	tombstones := []map[string]interface{}{}
	names, err := req.Storage.List(ctx, storageClientPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		if f.client != "" && n != f.client {
			continue
		}
		c, err := clientOf(n)
		if err != nil {
			return nil, err
		}
		if c != nil && c.Status == record.ClientDeprovisioned && (f.owner == "" || c.Owner == f.owner) {
			tombstones = append(tombstones, map[string]interface{}{
				"client":           c.Name,
				"owner":            c.Owner,
				"deprovisioned_at": c.StatusChangedAt,
				"deprovisioned_by": c.StatusChangedBy,
			})
		}
	}
	return &logical.Response{Data: map[string]interface{}{
		"keys":       items,
		"count":      len(items),
		"tombstones": tombstones,
	}}, nil
}

var inventoryResponseFields = map[string]*framework.FieldSchema{
	"keys":       field(framework.TypeSlice, "The keys: key_id, client, name, role, owner, scopes, environment, state, version, times and issuer."),
	"count":      field(framework.TypeInt, "Number of keys listed."),
	"tombstones": field(framework.TypeSlice, "Deprovisioned clients: client, owner, deprovisioned_at, deprovisioned_by."),
}
