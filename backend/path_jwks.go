package backend

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathJWKSHelpSyn = `Public keys that verify tokens from the token exchange (JWK Set).`
const pathJWKSHelpDesc = `
Reading jwks needs no Vault token: it returns the current and previous
Ed25519 public signing keys as a raw JWK Set document (RFC 7517), the form
JWT libraries fetch. Resource servers verify exchanged tokens offline against
it, picking the key by the token's "kid". A rotated-out key stays published
until every token it signed has expired.
`

const pathJWKSRotateHelpSyn = `Rotate the token signing key now.`
const pathJWKSRotateHelpDesc = `
Makes a new signing key current at once (e.g. after a suspected compromise or
to test verifiers). The old key stops signing and stays published in jwks for
token_ttl, so tokens it signed keep verifying until they expire. Keys also
rotate on their own every signing_key_rotation_period (config).
`

func (b *apikeysBackend) pathJWKS() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "jwks$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "jwks",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathJWKSRead},
			},
			HelpSynopsis:    pathJWKSHelpSyn,
			HelpDescription: pathJWKSHelpDesc,
		},
		{
			Pattern: "jwks/rotate$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "signing-key",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathJWKSRotate,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "rotate"},
				},
			},
			HelpSynopsis:    pathJWKSRotateHelpSyn,
			HelpDescription: pathJWKSRotateHelpDesc,
		},
	}
}

// pathJWKSRead serves the JWK Set as a raw HTTP body. It only reads: anyone
// can call it, so it must not be a way to make the mount write storage. The
// first key is created when the mount initializes, and rotation happens in
// the periodic tick and the token exchange; a key at most a tick past its
// period is still the one signing, so publishing it is right.
func (b *apikeysBackend) pathJWKSRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	set, err := b.readSigningKeys(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(set.JWKS(b.clock.Now()))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

func (b *apikeysBackend) pathJWKSRotate(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	set, err := b.rotateSigningKeys(ctx, req, req.Storage, cfg, true)
	if err != nil {
		return nil, err
	}
	var previous []string
	for _, p := range set.Published(b.clock.Now())[1:] {
		previous = append(previous, p.KID)
	}
	return &logical.Response{Data: map[string]interface{}{
		"kid":           set.Current.KID,
		"previous_kids": nonNil(previous),
		"created_at":    set.Current.CreatedAt,
	}}, nil
}
