package backend

import (
	"context"
	"fmt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathCredsHelpSyn = `Get a short-lived leased API key for a client under a role.`
const pathCredsHelpDesc = `
Reading creds/<client>/<role> issues a new key with a Vault lease: ttl and
max_ttl come from the role (ttl, max_ttl), capped by the mount's. The key is
returned once, as "key"; only its HMAC is stored. Renewing the lease extends
the key up to max_ttl; when the lease ends, is revoked, or the token that read
it is revoked, the key is revoked at once and fails verify.

The role's allowed_client_types, environment, issue_bound_cidrs, scopes and
audiences apply. "scopes" (optional) narrows the key to a subset of the
role's scopes. Roles with requires_approval do not issue leased keys.
Leased keys appear in the inventory (leased=true) under keys/<client>/lease-*.
A dead leased key (revoked, or past its expiry) is purged from storage
leased_key_retention after it died (see config and tidy); its history stays
in the lifecycle log.
`

// leasedKeyNamePrefix starts the names of leased keys under keys/<client>/.
const leasedKeyNamePrefix = "lease-"

func (b *apikeysBackend) pathCreds() *framework.Path {
	return &framework.Path{
		Pattern: "creds/(?P<client>[^/]+)/(?P<role>[^/]+)$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "leased-key",
		},
		Fields: map[string]*framework.FieldSchema{
			"client": {Type: framework.TypeString, Description: "Name of the client the key is for.", Required: true},
			"role":   {Type: framework.TypeString, Description: "Role to issue the key under; its ttl and max_ttl set the lease.", Required: true},
			"scopes": {Type: framework.TypeCommaStringSlice, Description: "Scopes of the key, a subset of the role's scopes (default: all of the role's scopes)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathCredsRead,
				Responses:    okResponse(credsResponseFields),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate"},
			},
		},
		HelpSynopsis:    pathCredsHelpSyn,
		HelpDescription: pathCredsHelpDesc,
	}
}

func (b *apikeysBackend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	clientName, roleName := d.Get("client").(string), d.Get("role").(string)
	if err := record.ValidateName("client", clientName); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if err := record.ValidateName("role", roleName); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	raw, scopesGiven := d.GetOk("scopes")
	var wanted []string
	if scopesGiven {
		wanted = raw.([]string)
	}
	return b.issueLeasedKey(ctx, req, clientName, roleName, wanted, scopesGiven)
}

// issueLeasedKey checks the request against the client and role policy and
// creates a leased key. It stores nothing when the request is refused.
func (b *apikeysBackend) issueLeasedKey(ctx context.Context, req *logical.Request, clientName, roleName string, wanted []string, scopesGiven bool) (*logical.Response, error) {
	name, err := newLeasedKeyName()
	if err != nil {
		return nil, err
	}
	// A read lock excludes a concurrent lock or de-provisioning of the
	// client (they take the write lock) without serialising issuance.
	defer b.locks.lockKey(clientName, name)()
	defer b.locks.rlockRole(roleName)()

	s := req.Storage
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	client, role, err := b.issueTarget(ctx, s, clientName, roleName)
	if err != nil {
		return nil, err
	}
	if role.RequiresApproval {
		return nil, userErrorf("role %q requires approval, which leased keys cannot carry: use keys/%s/<name> with an approved request, or a role without requires_approval", role.Name, clientName)
	}
	if err := checkIssuePolicy(role, client, req); err != nil {
		return nil, err
	}
	keyScopes, err := keyScopesFor(role, wanted, scopesGiven)
	if err != nil {
		return nil, err
	}
	// 80 random bits make a clash with an existing name practically
	// impossible; refuse rather than overwrite if it ever happens.
	if existing, err := b.getKey(ctx, s, clientName, name); err != nil || existing != nil {
		if err == nil {
			err = fmt.Errorf("generated leased key name %s/%s is taken; retry", clientName, name)
		}
		return nil, err
	}
	lim := b.leaseLimits(role)
	if lim.TTL <= 0 {
		return nil, userErrorf("role %q resolves to a lease ttl of 0; set its ttl", role.Name)
	}

	// Leased keys are never retrievable: the lease holder gets the secret
	// once, and only its HMAC is kept.
	k, plaintext, err := b.newKey(ctx, req, cfg, role, client, name, keyScopes, false)
	if err != nil {
		return nil, err
	}
	k.Purpose = "leased key (creds/)"
	k.Leased = true
	// The key expires with its lease even if Vault's revocation is late;
	// renewals move this forward.
	k.ExpiresAt = k.CreatedAt.Add(lim.TTL)
	ev := issuedEvent(req, k)
	ev.Details["leased"] = "true"
	ev.Details["ttl"] = lim.TTL.String()
	ev.Details["max_ttl"] = lim.MaxTTL.String()
	if err := b.commitKey(ctx, s, k, k.Versions, ev); err != nil {
		return nil, err
	}

	data := map[string]interface{}{
		"key":         plaintext,
		"key_id":      k.KeyID,
		"client":      k.Client,
		"role":        k.Role,
		"name":        k.Name,
		"scopes":      nonNil(k.Scopes),
		"aud":         nonNil(role.Audiences),
		"environment": k.Environment,
		"expires_at":  k.ExpiresAt,
	}
	resp := b.Secret(secretTypeLeasedKey).Response(data, map[string]interface{}{
		"client":  k.Client,
		"name":    k.Name,
		"key_id":  k.KeyID,
		"role":    k.Role,
		"max_ttl": record.Secs(lim.MaxTTL),
	})
	resp.Secret.TTL = lim.TTL
	resp.Secret.MaxTTL = lim.MaxTTL
	return resp, nil
}

// leaseLimits resolves a role's lease TTLs against this mount's.
func (b *apikeysBackend) leaseLimits(role *record.Role) leaseLimits {
	sys := b.System()
	return leaseLimitsFor(role, sys.DefaultLeaseTTL(), sys.MaxLeaseTTL())
}

func newLeasedKeyName() (string, error) {
	id, err := randomHex(10)
	return leasedKeyNamePrefix + id, err
}

var credsResponseFields = map[string]*framework.FieldSchema{
	"key":         field(framework.TypeString, "The leased key secret."),
	"key_id":      field(framework.TypeString, "Stable identifier of the key."),
	"client":      field(framework.TypeString, "Client the key was issued to."),
	"name":        field(framework.TypeString, "Name of the key."),
	"role":        field(framework.TypeString, "Role the key was issued under."),
	"environment": field(framework.TypeString, "Environment the key is valid in."),
	"scopes":      field(framework.TypeStringSlice, "Scopes of the key."),
	"aud":         field(framework.TypeStringSlice, "Audiences of the key."),
	"expires_at":  field(framework.TypeString, "When the key expires (RFC 3339)."),
}
