package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const storageClientPrefix = "clients/"

// Client statuses.
const (
	clientActive        = "active"
	clientLocked        = "locked"
	clientDeprovisioned = "deprovisioned"
)

// Client types.
const (
	clientInternal = "internal"
	clientExternal = "external"
)

// Client is an API consumer (SPEC §2).
type Client struct {
	Name                string            `json:"name"`
	Owner               string            `json:"owner"`
	Type                string            `json:"type"`
	Description         string            `json:"description,omitempty"`
	Contact             string            `json:"contact,omitempty"`
	AllowedEnvironments []string          `json:"allowed_environments,omitempty"`
	BoundCIDRs          []string          `json:"bound_cidrs,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	Status              string            `json:"status"`
	StatusReason        string            `json:"status_reason,omitempty"`
	StatusChangedAt     time.Time         `json:"status_changed_at,omitempty"`
	StatusChangedBy     *Actor            `json:"status_changed_by,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	CreatedBy           Actor             `json:"created_by"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

func clientStorageKey(name string) string { return storageClientPrefix + name }

func (b *apikeysBackend) getClient(ctx context.Context, s logical.Storage, name string) (*Client, error) {
	return getJSON[Client](ctx, s, clientStorageKey(name), fmt.Sprintf("client %q", name))
}

func (b *apikeysBackend) putClient(ctx context.Context, s logical.Storage, c *Client) error {
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

func (c *Client) responseData() map[string]interface{} {
	d := map[string]interface{}{
		"name":                 c.Name,
		"owner":                c.Owner,
		"type":                 c.Type,
		"description":          c.Description,
		"contact":              c.Contact,
		"allowed_environments": nonNil(c.AllowedEnvironments),
		"bound_cidrs":          nonNil(c.BoundCIDRs),
		"metadata":             nonNilMap(c.Metadata),
		"status":               c.Status,
		"created_at":           c.CreatedAt,
		"created_by":           c.CreatedBy,
		"updated_at":           c.UpdatedAt,
	}
	if c.Status != clientActive {
		d["status_reason"] = c.StatusReason
		d["status_changed_at"] = c.StatusChangedAt
		d["status_changed_by"] = c.StatusChangedBy
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
