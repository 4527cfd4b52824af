package backend

import (
	"context"
	"fmt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

const storageClientPrefix = "clients/"

func clientStorageKey(name string) string { return storageClientPrefix + name }

func (b *apikeysBackend) getClient(ctx context.Context, s logical.Storage, name string) (*record.Client, error) {
	return getJSON[record.Client](ctx, s, clientStorageKey(name), fmt.Sprintf("client %q", name))
}

func (b *apikeysBackend) putClient(ctx context.Context, s logical.Storage, c *record.Client) error {
	if err := putJSON(ctx, s, clientStorageKey(c.Name), "client", c); err != nil {
		return err
	}
	b.afterClientWrite(c.Name)
	return nil
}

// afterClientWrite is called after a client record changes on this node;
// caches keyed by client hook in here.
func (b *apikeysBackend) afterClientWrite(name string) {
	b.cache.invalidate(clientStorageKey(name))
}

func clientData(c *record.Client) map[string]interface{} {
	d := map[string]interface{}{
		"name":                 c.Name,
		"owner":                c.Owner,
		"type":                 c.Type,
		"description":          c.Description,
		"contact":              c.Contact,
		"allowed_environments": nonNil(c.AllowedEnvironments),
		"bound_cidrs":          nonNil(c.BoundCIDRs),
		"rate_limit":           c.RateLimit,
		"rate_limit_window":    record.Secs(c.EffectiveRateLimitWindow()),
		"metadata":             nonNilMap(c.Metadata),
		"status":               c.Status,
		"created_at":           c.CreatedAt,
		"created_by":           c.CreatedBy,
		"updated_at":           c.UpdatedAt,
	}
	if c.Status != record.ClientActive {
		d["status_reason"] = c.StatusReason
		d["status_changed_at"] = c.StatusChangedAt
		d["status_changed_by"] = c.StatusChangedBy
	}
	if c.UnlockRequiresApproval {
		d["unlock_requires_approval"] = true
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
