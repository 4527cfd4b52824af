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

const pathInventoryHelpSyn = `List the keys with their owner, issuer, scopes, lifetime and use, a page at a time.`
const pathInventoryHelpDesc = `
The inventory lists the keys of the mount (managed and leased) with issuer,
owner, client, role, scopes, environment, created, expires, next rotation,
last used and state, in (client, name) order, plus de-provisioned clients as
tombstones. Dead leased keys (revoked or expired) are listed until they are
purged, leased_key_retention after they died (see config and tidy).

Filters narrow the listing: key_id, client, role, owner, environment, state,
expires_before / expires_after and last_used_before (RFC 3339),
expiring_within (keys whose expiry or next rotation falls within the
duration) and unused_for (keys not verified for at least the duration,
never-used keys counted from creation).

Pages: at most "limit" keys (default 100, at most 1000); "next" is the value
of "after" for the next page, absent at the end. A page reads at most
5 x limit key records, so the cost of a page does not grow with the mount:
like a DynamoDB scan, a filter that matches few keys returns fewer (even
none) with a "next" — a short or empty page with a "next" is not the end.
A client filter walks only that client's keys, and a key_id is looked up
directly when the key was issued by this version (older keys are found by
the scan). Tombstones come in their own pages: "tombstones_after" and
"tombstones_next", at most "limit" clients read per page; a key_id lookup
returns none.
`

// inventoryScanFactor bounds the key records one page reads: limit times
// this. Documented in the help text and the README.
const inventoryScanFactor = 5

const (
	defaultInventoryPage = 100
	maxInventoryPage     = 1000
)

func inventoryFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"key_id":           {Type: framework.TypeString, Description: "Only the key with this key id."},
		"client":           {Type: framework.TypeString, Description: "Only keys of this client (the page walks only that client)."},
		"role":             {Type: framework.TypeString, Description: "Only keys issued under this role."},
		"owner":            {Type: framework.TypeString, Description: "Only keys of clients with this owner."},
		"environment":      {Type: framework.TypeString, Description: "Only keys of this environment."},
		"state":            {Type: framework.TypeString, Description: "Only keys in this state: active, pending, revoked, expired, retired, locked, disabled."},
		"expiring_within":  {Type: framework.TypeDurationSecond, Description: "Only keys that expire or are due to rotate within this duration."},
		"unused_for":       {Type: framework.TypeDurationSecond, Description: "Only keys not used for at least this duration."},
		"expires_before":   {Type: framework.TypeString, Description: "Only keys with an expiry before this time (RFC 3339)."},
		"expires_after":    {Type: framework.TypeString, Description: "Only keys with an expiry after this time (RFC 3339)."},
		"last_used_before": {Type: framework.TypeString, Description: "Only keys last used before this time (RFC 3339); never-used keys count from creation."},
		"after":            {Type: framework.TypeString, Description: "Cursor: the previous page's next (empty: from the first key)."},
		"limit":            {Type: framework.TypeInt, Description: "Most keys to return, 1-1000 (default 100).", Default: defaultInventoryPage},
		"tombstones_after": {Type: framework.TypeString, Description: "Cursor of the tombstones: the previous page's tombstones_next."},
	}
}

func (b *apikeysBackend) pathInventory() []*framework.Path {
	return append([]*framework.Path{{
		Pattern: "inventory/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "inventory",
		},
		Fields: inventoryFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathInventoryRead, Responses: okResponse(inventoryResponseFields)},
		},
		HelpSynopsis:    pathInventoryHelpSyn,
		HelpDescription: pathInventoryHelpDesc,
	}}, b.pathInventoryExport()...)
}

type inventoryFilter struct {
	keyID, client, role, owner, environment, state string
	expiringWithin, unusedFor                      time.Duration
	expiresBefore, expiresAfter, lastUsedBefore    time.Time
}

func (f inventoryFilter) match(b *apikeysBackend, k *record.Key, owner, state string, now time.Time) bool {
	switch {
	case f.keyID != "" && k.KeyID != f.keyID,
		f.client != "" && k.Client != f.client,
		f.role != "" && k.Role != f.role,
		f.owner != "" && owner != f.owner,
		f.environment != "" && k.Environment != f.environment,
		f.state != "" && state != f.state,
		!f.expiresBefore.IsZero() && (k.ExpiresAt.IsZero() || !k.ExpiresAt.Before(f.expiresBefore)),
		!f.expiresAfter.IsZero() && (k.ExpiresAt.IsZero() || !k.ExpiresAt.After(f.expiresAfter)):
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
	if f.unusedFor > 0 || !f.lastUsedBefore.IsZero() {
		last := b.cache.usage.LastUsed(k)
		if last.IsZero() {
			last = k.CreatedAt
		}
		if f.unusedFor > 0 && now.Sub(last) < f.unusedFor {
			return false
		}
		if !f.lastUsedBefore.IsZero() && !last.Before(f.lastUsedBefore) {
			return false
		}
	}
	return true
}

// inventoryQuery is a parsed inventory request: the filter and the page.
type inventoryQuery struct {
	filter           inventoryFilter
	after            string
	limit            int
	tombstonesAfter  string
	tombstonesWanted bool
}

func parseInventoryQuery(d *framework.FieldData) (inventoryQuery, error) {
	str := func(name string) string { return strings.TrimSpace(d.Get(name).(string)) }
	q := inventoryQuery{
		filter: inventoryFilter{
			keyID:          str("key_id"),
			client:         str("client"),
			role:           str("role"),
			owner:          str("owner"),
			environment:    str("environment"),
			state:          str("state"),
			expiringWithin: time.Duration(d.Get("expiring_within").(int)) * time.Second,
			unusedFor:      time.Duration(d.Get("unused_for").(int)) * time.Second,
		},
		after: str("after"),
		limit: d.Get("limit").(int),
	}
	if _, ok := d.Schema["tombstones_after"]; ok { // not on the export
		q.tombstonesAfter = str("tombstones_after")
	}
	f := &q.filter
	switch f.state {
	case "", record.StateActive, record.StatePending, record.StateRevoked, record.StateExpired, record.StateRetired, record.StateLocked, record.StateDisabled:
	default:
		return q, userErrorf("state must be one of active, pending, revoked, expired, retired, locked, disabled (got %q)", f.state)
	}
	if q.limit < 1 || q.limit > maxInventoryPage {
		return q, userErrorf("limit must be between 1 and %d (got %d)", maxInventoryPage, q.limit)
	}
	for name, dst := range map[string]*time.Time{"expires_before": &f.expiresBefore, "expires_after": &f.expiresAfter, "last_used_before": &f.lastUsedBefore} {
		if s := str(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, userErrorf("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z (got %q)", name, s)
			}
			*dst = t
		}
	}
	if q.after != "" {
		c, n, ok := strings.Cut(q.after, "/")
		if !ok || record.ValidateName("client", c) != nil || record.ValidateName("key", n) != nil {
			return q, userErrorf("after must be the next of a previous page, <client>/<name> (got %q)", q.after)
		}
		if f.client != "" && c != f.client {
			return q, userErrorf("after %q is not a cursor of client %q", q.after, f.client)
		}
	}
	if f.client != "" {
		if err := record.ValidateName("client", f.client); err != nil {
			return q, userErrorf("%s", err.Error())
		}
	}
	if q.tombstonesAfter != "" {
		if err := record.ValidateName("client", q.tombstonesAfter); err != nil {
			return q, userErrorf("tombstones_after: %s", err.Error())
		}
	}
	// Tombstones come with the first page of keys, or when their own
	// cursor asks for the next page of them. Tombstones are clients, so a
	// lookup of one key_id (a gateway's or an auditor's point query) skips
	// them and reads no client list.
	q.tombstonesWanted = (q.after == "" && q.filter.keyID == "") || q.tombstonesAfter != ""
	return q, nil
}

// inventoryPage is one page: the items, the cursor of the next page ("" at
// the end) and the tombstones read with it.
type inventoryPage struct {
	items          []map[string]interface{}
	next           string
	tombstones     []map[string]interface{}
	tombstonesNext string
}

func (b *apikeysBackend) pathInventoryRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	q, err := parseInventoryQuery(d)
	if err != nil {
		return nil, err
	}
	page, err := b.inventoryPage(ctx, req.Storage, q)
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"keys":       page.items,
		"count":      len(page.items),
		"tombstones": page.tombstones,
	}
	if page.next != "" {
		data["next"] = page.next
	}
	if page.tombstonesNext != "" {
		data["tombstones_next"] = page.tombstonesNext
	}
	return &logical.Response{Data: data}, nil
}

// inventoryPage reads one page of q: at most limit x inventoryScanFactor
// key records, or one (through its pointer) for a key_id.
func (b *apikeysBackend) inventoryPage(ctx context.Context, s logical.Storage, q inventoryQuery) (inventoryPage, error) {
	page := inventoryPage{items: []map[string]interface{}{}, tombstones: []map[string]interface{}{}}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return page, err
	}
	now := b.clock.Now()
	clientOf := memoByName(func(name string) (*record.Client, error) { return b.getClient(ctx, s, name) })
	visit := func(k *record.Key) (bool, error) {
		c, err := clientOf(k.Client)
		if err != nil {
			return false, err
		}
		state := k.State(now)
		if c != nil && c.Status == record.ClientLocked && state == record.StateActive {
			state = record.StateLocked
		}
		owner := keyOwner(k, c)
		if !q.filter.match(b, k, owner, state, now) {
			return true, nil
		}
		page.items = append(page.items, b.inventoryItem(cfg, k, owner, state, now))
		return len(page.items) < q.limit, nil
	}

	found := false
	if q.filter.keyID != "" && q.after == "" {
		var k *record.Key
		if k, found, err = b.keyByID(ctx, s, q.filter.keyID); err != nil {
			return page, err
		}
		if !found {
			// Once every key has its pointer, none means no such key.
			if found, err = b.keyIDsBackfilled(ctx, s); err != nil {
				return page, err
			}
		}
		if k != nil && (q.filter.client == "" || k.Client == q.filter.client) {
			if _, err := visit(k); err != nil {
				return page, err
			}
		}
	}
	if !found {
		// No pointer, and keys issued before pointers existed may still
		// lack theirs: found by a bounded scan like any other filter.
		w := keyWalk{After: q.after, Client: q.filter.client, Budget: q.limit * inventoryScanFactor}
		if page.next, err = w.step(ctx, b, s, visit); err != nil {
			return page, err
		}
	}
	if q.tombstonesWanted {
		if page.tombstones, page.tombstonesNext, err = b.tombstonePage(ctx, s, q, clientOf); err != nil {
			return page, err
		}
	}
	return page, nil
}

func (b *apikeysBackend) inventoryItem(cfg *record.Config, k *record.Key, owner, state string, now time.Time) map[string]interface{} {
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
	return item
}

// tombstonePage reads at most limit client records after the tombstone
// cursor, of the candidates tombstoneCandidates names, and returns the
// de-provisioned ones that pass the client and owner filters, with the
// cursor of the next page ("" at the end).
func (b *apikeysBackend) tombstonePage(ctx context.Context, s logical.Storage, q inventoryQuery, clientOf func(string) (*record.Client, error)) ([]map[string]interface{}, string, error) {
	out := []map[string]interface{}{}
	names := []string{q.filter.client}
	if q.filter.client == "" {
		var err error
		if names, err = b.tombstoneCandidates(ctx, s); err != nil {
			return nil, "", err
		}
	}
	start := sort.Search(len(names), func(i int) bool { return names[i] > q.tombstonesAfter })
	read := 0
	for _, n := range names[start:] {
		if read == q.limit {
			return out, names[start+read-1], nil
		}
		read++
		c, err := clientOf(n)
		if err != nil {
			return nil, "", err
		}
		if c != nil && c.Status == record.ClientDeprovisioned && (q.filter.owner == "" || c.Owner == q.filter.owner) {
			out = append(out, map[string]interface{}{
				"client":           c.Name,
				"owner":            c.Owner,
				"deprovisioned_at": c.StatusChangedAt,
				"deprovisioned_by": c.StatusChangedBy,
			})
		}
	}
	return out, "", nil
}

var inventoryResponseFields = map[string]*framework.FieldSchema{
	"keys":            field(framework.TypeSlice, "The keys: key_id, client, name, role, owner, scopes, environment, state, version, times and issuer."),
	"count":           field(framework.TypeInt, "Number of keys on this page."),
	"next":            field(framework.TypeString, "Value of after for the next page; absent at the end. A short or empty page with a next is not the end."),
	"tombstones":      field(framework.TypeSlice, "Deprovisioned clients: client, owner, deprovisioned_at, deprovisioned_by."),
	"tombstones_next": field(framework.TypeString, "Value of tombstones_after for the next page of tombstones; absent at the end."),
}
