package backend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/signing"
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
leaves the set. jwks/revoke withdraws any published key but the current one
at once; jwks/rotate with revoke_previous=true withdraws every key but a
fresh current one.
`

const pathJWKSRotateHelpSyn = `Rotate the token signing key now.`
const pathJWKSRotateHelpDesc = `
Makes a new signing key current at once (e.g. to test verifiers): the
pre-published next key if there is one, or a fresh key. The old key stops
signing and stays published in jwks for token_ttl, so tokens it signed keep
verifying until they expire, and then leaves jwks. Keys also rotate on their
own every signing_key_rotation_period (config).

  vault write -f apikeys/jwks/rotate

After a suspected compromise of the signing keys, rotate with
revoke_previous=true: a freshly generated key becomes current, and every
other key leaves jwks at once: the outgoing key, the keys rotated out
before it, and the pre-published next key (stored alongside the current
one, so not trusted either; a new one is published before the next
scheduled rotation). Tokens they signed (forged ones included) stop
verifying as soon as verifiers refresh the JWKS; legitimate tokens fail
too, and their holders exchange their key again. The response lists the
withdrawn keys in revoked_kids; the signing_key.rotated event records the
choice and a signing_key.revoked event is logged per withdrawn key.

To withdraw one rotated-out key without rotating, use jwks/revoke.
`

const pathJWKSRevokeHelpSyn = `Stop publishing named signing keys at once.`
const pathJWKSRevokeHelpDesc = `
Withdraws the named keys from jwks at once, e.g. a key rotated out earlier
whose private half may have leaked:

  vault write apikeys/jwks/revoke kid=<kid>

kid takes one or more key ids (comma-separated) among those jwks publishes:
rotated-out keys and the pre-published next key (a new next key is then
published before the next scheduled rotation, which may wait for it up to an
hour). The current signing key cannot be withdrawn this way, as tokens need
a key to be signed with: rotate it out with jwks/rotate revoke_previous=true.
Either every named key is withdrawn or, if one cannot be, none is.

A withdrawn key is deleted, so it stays withdrawn across reloads and
restarts; tokens it signed stop verifying as soon as verifiers refresh the
JWKS. Each withdrawal is logged as a signing_key.revoked event.
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
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathJWKSRead, Responses: rawResponse("The JSON Web Key Set (RFC 7517) as the raw body: {\"keys\": [...]}.")},
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
					Description: "After a suspected compromise: make a freshly generated key current and stop publishing every other key at once (the outgoing key, keys rotated out earlier, the pre-published next key); tokens they signed stop verifying as soon as verifiers refresh the JWKS. Default false: the outgoing key stays published for token_ttl so the tokens it signed verify until they expire.",
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathJWKSRotate,
					Responses:    okResponse(jwksRotateResponseFields),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "rotate"},
				},
			},
			HelpSynopsis:    pathJWKSRotateHelpSyn,
			HelpDescription: pathJWKSRotateHelpDesc,
		},
		{
			Pattern: "jwks/revoke$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "signing-keys",
			},
			Fields: map[string]*framework.FieldSchema{
				"kid": {
					Type:        framework.TypeCommaStringSlice,
					Description: "Key ids to stop publishing, comma-separated: rotated-out keys or the pre-published next key, never the current one.",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathJWKSRevoke,
					Responses:    okResponse(jwksRevokeResponseFields),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "revoke"},
				},
			},
			HelpSynopsis:    pathJWKSRevokeHelpSyn,
			HelpDescription: pathJWKSRevokeHelpDesc,
		},
	}
}

// pathJWKSRead serves the JWK Set as a raw HTTP body. It only reads: anyone
// can call it, so it must not be a way to make the mount write storage. The
// first key is created when the mount initializes, and rotation happens in
// the periodic tick and the token exchange; a key at most a tick past its
// period is still the one signing, so publishing it is right.
func (b *apikeysBackend) pathJWKSRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	set, err := b.signing.Read(ctx, req.Storage)
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
	set, old, withdrawn, err := b.signing.Rotate(ctx, req.Storage, cfg, signingOrigin(req), revokePrevious)
	if err != nil {
		return nil, err
	}
	data := b.signingKeysData(set)
	data["created_at"] = set.Current.CreatedAt
	if revokePrevious {
		if old != "" {
			data["revoked_kid"] = old
		}
		data["revoked_kids"] = nonNil(withdrawn)
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathJWKSRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	kids := dedupe(d.Get("kid").([]string))
	if len(kids) == 0 {
		return nil, userErrorf("kid is required: name the key ids to withdraw (see jwks)")
	}
	set, err := b.signing.Withdraw(ctx, req.Storage, signingOrigin(req), kids)
	switch {
	case errors.Is(err, jwtsign.ErrCurrentKey):
		return nil, userErrorf("kid: %s; rotate it out with jwks/rotate revoke_previous=true", err)
	case errors.Is(err, jwtsign.ErrNotPublished):
		return nil, userErrorf("kid: %s (published now: %s)", err, strings.Join(publishedKIDs(set, b.clock.Now()), ", "))
	case err != nil:
		return nil, err
	}
	data := b.signingKeysData(set)
	data["revoked_kids"] = kids
	return &logical.Response{Data: data}, nil
}

// signingOrigin attributes a signing-key change to the request's caller.
func signingOrigin(req *logical.Request) signing.Origin {
	return signing.Origin{Actor: actorFromRequest(req), RequestID: req.ID}
}

// signingKeysData describes the set after a change: the current key and
// previous_kids, the other keys still published (the pre-published next
// key, and rotated-out keys whose tokens have not all expired yet).
func (b *apikeysBackend) signingKeysData(set *jwtsign.KeySet) map[string]interface{} {
	kids := publishedKIDs(set, b.clock.Now())
	current := ""
	if set.Current != nil {
		current, kids = set.Current.KID, kids[1:]
	}
	return map[string]interface{}{"kid": current, "previous_kids": nonNil(kids)}
}

func publishedKIDs(set *jwtsign.KeySet, now time.Time) []string {
	var kids []string
	for _, p := range set.Published(now) {
		kids = append(kids, p.KID)
	}
	return kids
}

// dedupe drops empty and repeated entries, keeping the first order.
func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	var out []string
	for _, v := range in {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

var jwksRotateResponseFields = map[string]*framework.FieldSchema{
	"kid":           field(framework.TypeString, "Id of the current signing key."),
	"created_at":    field(framework.TypeString, "When the new signing key was created (RFC 3339)."),
	"previous_kids": field(framework.TypeStringSlice, "Ids of keys still published for verification."),
	"revoked_kid":   field(framework.TypeString, "Id of the key withdrawn by this rotation, if any."),
	"revoked_kids":  field(framework.TypeStringSlice, "Ids of keys withdrawn by this request."),
}

var jwksRevokeResponseFields = map[string]*framework.FieldSchema{
	"kid":           field(framework.TypeString, "Id of the current signing key."),
	"previous_kids": field(framework.TypeStringSlice, "Ids of keys still published."),
	"revoked_kids":  field(framework.TypeStringSlice, "Ids of keys withdrawn by this request."),
}
