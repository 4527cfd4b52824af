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
it, picking the key by the token's "kid". The key the next scheduled
rotation will make current is published ahead of it (half the
signing_key_rotation_period, at most a day, before it signs), so a verifier
that caches the set already holds it. A rotated-out key stays published
until every token it signed has expired (token_ttl after its rotation), then
leaves the set; jwks/rotate with revoke_previous=true withdraws it at once.
`

const pathJWKSRotateHelpSyn = `Rotate the token signing key now.`
const pathJWKSRotateHelpDesc = `
Makes a new signing key current at once (e.g. after a suspected compromise or
to test verifiers): the pre-published next key if there is one, or a fresh
key (always fresh with revoke_previous=true). The old key stops signing and stays published in jwks for
token_ttl, so tokens it signed keep verifying until they expire, and then
leaves jwks. Keys also rotate on their own every signing_key_rotation_period
(config).

After a suspected compromise of the signing key, rotate with
revoke_previous=true: the outgoing key stops being published at once, so
tokens it signed (forged ones included) stop verifying as soon as verifiers
refresh the JWKS; legitimate tokens it signed fail too, and their holders
exchange their key again. The signing_key.rotated event records the choice.
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
			Fields: map[string]*framework.FieldSchema{
				"revoke_previous": {
					Type:        framework.TypeBool,
					Description: "After a suspected compromise: stop publishing the outgoing key at once; tokens it signed stop verifying as soon as verifiers refresh the JWKS. Default false: the outgoing key stays published for token_ttl so the tokens it signed verify until they expire.",
				},
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

func (b *apikeysBackend) pathJWKSRotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	revokePrevious := d.Get("revoke_previous").(bool)
	set, old, err := b.rotateSigningKeys(ctx, req, req.Storage, cfg, true, revokePrevious)
	if err != nil {
		return nil, err
	}
	// previous_kids: the rotated-out keys still published (their tokens
	// have not all expired yet).
	var previous []string
	for _, p := range set.Published(b.clock.Now())[1:] {
		previous = append(previous, p.KID)
	}
	data := map[string]interface{}{
		"kid":           set.Current.KID,
		"previous_kids": nonNil(previous),
		"created_at":    set.Current.CreatedAt,
	}
	if revokePrevious && old != "" {
		data["revoked_kid"] = old
	}
	return &logical.Response{Data: data}, nil
}
