package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathRotateHelpSyn = `Rotate a key now, or stage a new version.`
const pathRotateHelpDesc = `
Creates a new version and returns its secret once, as "key". By default the
new version becomes active at once and the old one stays accepted as
"previous" for the role's grace_period. With stage=true the new version is
"pending": verify accepts it only with allow_pending=true, until it is
promoted with keys/<client>/<name>/promote.

A rotation gives its caller a working secret of the key: grant it (update on
keys/<client>/<name>/rotate) only to those who may read the key, the
client's application and operators. Under a role with requires_approval it
needs approval_id, an approved request for this key (see requests), used up
by the rotation as by an issuance.
`
const pathPromoteHelpSyn = `Make a key's pending version active.`
const pathPromoteHelpDesc = `The active version becomes "previous" for the role's grace_period.`
const pathRollbackHelpSyn = `Reactivate a key's previous version.`
const pathRollbackHelpDesc = `
Allowed while the previous version is still inside its grace period. The
version rolled back from becomes "previous" for the grace period, so a client
that already adopted it is not cut off; revoke it if it must stop at once.
`
const pathRevokeHelpSyn = `Revoke a key, or one version of it, at once.`
const pathRevokeHelpDesc = `
Without version, every version of the key is revoked and the key can no
longer rotate. With version, only that version is revoked. verify rejects a
revoked key from the moment this call returns. The reason is recorded in the
lifecycle log and on the client's revocation list. A version left as the
key's last accepted one revokes the key as a whole.

Revocation is final and idempotent: revoking a key or version that is
already revoked succeeds with a warning and changes nothing; the original
time and reason stand.
`

func (b *apikeysBackend) pathKeyOps() []*framework.Path {
	op := func(suffix, verb, syn, desc string, fields map[string]*framework.FieldSchema, cb framework.OperationFunc) *framework.Path {
		// revoke answers with what it revoked, the others with the key.
		responses := okResponse(keyResponseFields())
		if suffix == "revoke" {
			responses = okResponse(keyRevokeResponseFields())
		}
		f := keyPathFields()
		for k, v := range fields {
			f[k] = v
		}
		return &framework.Path{
			Pattern: "keys/(?P<client>[^/]+)/(?P<name>[^/]+)/" + suffix + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   verb,
				OperationSuffix: "key",
			},
			Fields: f,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: cb, Responses: responses},
			},
			HelpSynopsis:    syn,
			HelpDescription: desc,
		}
	}
	// The reversible controls (disable, enable) live next door.
	return append([]*framework.Path{
		op("rotate", "rotate", pathRotateHelpSyn, pathRotateHelpDesc, map[string]*framework.FieldSchema{
			"stage":       {Type: framework.TypeBool, Description: "Create the new version as pending instead of active."},
			"approval_id": {Type: framework.TypeString, Description: "Approved request (the approval_id of requests/<id>) for this key; required for roles with requires_approval, refused for others."},
		}, b.pathKeyRotate),
		op("promote", "promote", pathPromoteHelpSyn, pathPromoteHelpDesc, nil, b.pathKeyPromote),
		op("rollback", "roll-back", pathRollbackHelpSyn, pathRollbackHelpDesc, nil, b.pathKeyRollback),
		op("revoke", "revoke", pathRevokeHelpSyn, pathRevokeHelpDesc, map[string]*framework.FieldSchema{
			"version": {Type: framework.TypeInt, Description: "Version to revoke (default: the whole key)."},
			"reason":  {Type: framework.TypeString, Description: "Why the key is revoked (recorded in the log and the revocation list)."},
		}, b.pathKeyRevoke),
	}, b.pathKeyControls()...)
}

func (b *apikeysBackend) pathKeyRotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	res, err := b.rotateKeyApproved(ctx, req, client, name, d.Get("stage").(bool), strings.TrimSpace(d.Get("approval_id").(string)))
	if err != nil {
		return nil, err
	}
	resp, err := b.keyOpResponse(ctx, req, res.key, res.version)
	if err != nil {
		return nil, err
	}
	resp.Data["key"] = res.plaintext
	return resp, nil
}

func (b *apikeysBackend) pathKeyPromote(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	k, v, err := b.promoteKey(ctx, req, client, name)
	if err != nil {
		return nil, err
	}
	return b.keyOpResponse(ctx, req, k, v)
}

func (b *apikeysBackend) pathKeyRollback(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	k, v, err := b.rollbackKey(ctx, req, client, name)
	if err != nil {
		return nil, err
	}
	return b.keyOpResponse(ctx, req, k, v)
}

func (b *apikeysBackend) pathKeyRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	version := d.Get("version").(int)
	if version < 0 {
		return nil, userErrorf("version must be a positive version number, or omitted to revoke the whole key")
	}
	k, revoked, unchanged, err := b.revokeKeyIdempotent(ctx, req, client, name, version, d.Get("reason").(string))
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, userErrorf("key %s/%s does not exist", client, name)
	}
	resp := &logical.Response{Data: map[string]interface{}{
		"key_id":           k.KeyID,
		"client":           k.Client,
		"name":             k.Name,
		"role":             k.Role,
		"state":            k.State(b.clock.Now()),
		"revoked_versions": nonNilInts(revoked),
	}}
	// Revoking again succeeds (revocation is idempotent) but says so: the
	// original revocation, its time and reason, stands.
	if unchanged {
		what, at, why := fmt.Sprintf("key %s/%s", client, name), k.RevokedAt, k.RevokeReason
		if v := k.Version(version); version > 0 && v != nil {
			what, at, why = fmt.Sprintf("version %d of key %s/%s", version, client, name), v.RevokedAt, v.RevokeReason
		}
		resp.AddWarning(fmt.Sprintf("%s was already revoked (at %s, reason %q); nothing changed, the original revocation stands", what, at.Format(time.RFC3339), why))
	}
	return resp, nil
}

func nonNilInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// keyOpResponse renders a key after an operation on version v.
func (b *apikeysBackend) keyOpResponse(ctx context.Context, req *logical.Request, k *record.Key, v *record.KeyVersion) (*logical.Response, error) {
	data, _, _, err := b.keyData(ctx, req.Storage, k)
	if err != nil {
		return nil, err
	}
	data["version"] = v.Version
	data["version_state"] = v.State
	return &logical.Response{Data: data}, nil
}
