package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// secretTypeLeasedKey is the Vault secret (lease) type of keys from creds/.
const secretTypeLeasedKey = "apikeys_leased_key"

// expirySlack absorbs the gap between the plugin's notion of a lease's end
// and the moment Vault's expiration manager fires the revocation.
const expirySlack = 2 * time.Second

func (b *apikeysBackend) secretLeasedKey() *framework.Secret {
	return &framework.Secret{
		Type: secretTypeLeasedKey,
		Fields: map[string]*framework.FieldSchema{
			"key":    {Type: framework.TypeString, Description: "The leased API key (returned once)."},
			"key_id": {Type: framework.TypeString, Description: "Non-secret identifier of the key."},
		},
		Renew:  userErrorsAnswered(b.leasedKeyRenew),
		Revoke: userErrorsAnswered(b.leasedKeyRevoke),
	}
}

// leaseRef is the internal data of a lease: which key it holds.
type leaseRef struct {
	client, name, keyID, role string
	maxTTL                    time.Duration
}

func leaseRefFrom(req *logical.Request) (leaseRef, error) {
	if req.Secret == nil {
		return leaseRef{}, fmt.Errorf("request carries no lease")
	}
	str := func(k string) string {
		s, _ := req.Secret.InternalData[k].(string)
		return s
	}
	ref := leaseRef{client: str("client"), name: str("name"), keyID: str("key_id"), role: str("role")}
	if ref.client == "" || ref.name == "" {
		return leaseRef{}, fmt.Errorf("lease internal data does not name a key")
	}
	// Internal data round-trips through JSON: numbers come back as
	// json.Number or float64.
	switch v := req.Secret.InternalData["max_ttl"].(type) {
	case int64:
		ref.maxTTL = time.Duration(v) * time.Second
	case float64:
		ref.maxTTL = time.Duration(v) * time.Second
	case interface{ Int64() (int64, error) }:
		if n, err := v.Int64(); err == nil {
			ref.maxTTL = time.Duration(n) * time.Second
		}
	}
	return ref, nil
}

// liveLeasedKey loads the key a lease holds, or nil when it is gone, was
// replaced under the same name, or is already revoked. The caller holds the
// key's locks.
func (b *apikeysBackend) liveLeasedKey(ctx context.Context, s logical.Storage, ref leaseRef) (*record.Key, error) {
	k, err := b.getKey(ctx, s, ref.client, ref.name)
	if err != nil || k == nil || k.KeyID != ref.keyID || k.Revoked {
		return nil, err
	}
	return k, nil
}

// leasedKeyRenew extends the key up to its max_ttl: the role's current
// limits apply (narrowing a role shortens renewals), never more than the
// max_ttl the lease was issued with.
func (b *apikeysBackend) leasedKeyRenew(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	ref, err := leaseRefFrom(req)
	if err != nil {
		return nil, err
	}
	defer b.locks.lockKey(ref.client, ref.name)()
	s := req.Storage
	k, err := b.liveLeasedKey(ctx, s, ref)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, userErrorf("the leased key %s/%s is revoked or gone; read new credentials from creds/%s/%s", ref.client, ref.name, ref.client, ref.role)
	}
	role, err := b.getRole(ctx, s, k.Role)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, userErrorf("role %q of the leased key no longer exists; the lease cannot be renewed", k.Role)
	}
	lim := b.leaseLimits(role)
	if ref.maxTTL > 0 && ref.maxTTL < lim.MaxTTL {
		lim.MaxTTL = ref.maxTTL
	}
	now := b.clock.Now()
	issued := req.Secret.IssueTime
	if issued.IsZero() {
		issued = k.CreatedAt
	}
	ttl, capped, err := renewTTL(lim, issued, now, req.Secret.Increment)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	k.ExpiresAt = now.Add(ttl)
	if err := b.commitKey(ctx, s, k, nil); err != nil {
		return nil, err
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = lim.MaxTTL
	if capped {
		resp.AddWarning(fmt.Sprintf("TTL capped at %s: the lease reaches its max_ttl of %s then", ttl.Round(time.Second), lim.MaxTTL))
	}
	return resp, nil
}

// leasedKeyRevoke revokes the key of an ended lease: Vault calls it on
// expiry, on `vault lease revoke` (also -prefix), and when the token that
// read the lease is revoked. Vault sends no caller identity with these
// requests, so they are logged as the "system" actor.
func (b *apikeysBackend) leasedKeyRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	ref, err := leaseRefFrom(req)
	if err != nil {
		return nil, err
	}
	defer b.locks.lockKey(ref.client, ref.name)()
	s := req.Storage
	k, err := b.liveLeasedKey(ctx, s, ref)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, nil // nothing left to revoke; the lease may go
	}
	reason := "lease revoked"
	if !k.ExpiresAt.IsZero() && !b.clock.Now().Before(k.ExpiresAt.Add(-expirySlack)) {
		reason = "lease expired"
	}
	var actor *logical.Request
	if req.EntityID != "" || req.ClientTokenAccessor != "" {
		actor = req
	}
	if _, err := b.revokeLoadedKeyLocked(ctx, actor, s, k, 0, reason); err != nil {
		return nil, err
	}
	return nil, nil
}
