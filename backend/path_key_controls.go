package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathKeyDisableHelpSyn = `Disable a key: verify answers "disabled" until it is enabled again.`
const pathKeyDisableHelpDesc = `
A reversible stop, for an incident under investigation: from the moment this
call returns verify answers code "disabled" for every version of the key
(and token exchange refuses it). Nothing else changes: the key's versions,
its history and its rotation schedule stay as they are, and scheduled
rotation keeps running while it is disabled, so a reader of the key still
gets the current secret. reason is required and recorded in the lifecycle
log (key.disabled) and on the key.

Disabling a disabled key succeeds with a warning and changes nothing. A
revoked key cannot be disabled: revocation is final already.
`
const pathKeyEnableHelpSyn = `Enable a disabled key: it verifies again.`
const pathKeyEnableHelpDesc = `
Undoes keys/<client>/<name>/disable; reason is optional (vault write -f
works). Logged as key.enabled with when and why the key had been disabled.
Enabling a key that is not disabled succeeds with a warning and changes
nothing. A revoked key cannot be enabled.
`

func (b *apikeysBackend) pathKeyControls() []*framework.Path {
	path := func(suffix, syn, desc, reasonDesc string, disabled bool) *framework.Path {
		f := keyPathFields()
		f["reason"] = &framework.FieldSchema{Type: framework.TypeString, Description: reasonDesc}
		return &framework.Path{
			Pattern: "keys/(?P<client>[^/]+)/(?P<name>[^/]+)/" + suffix + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   suffix,
				OperationSuffix: "key",
			},
			Fields: f,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						return b.pathKeySetDisabled(ctx, req, d, disabled)
					},
					Responses: okResponse(keyResponseFields()),
				},
			},
			HelpSynopsis:    syn,
			HelpDescription: desc,
		}
	}
	return []*framework.Path{
		path("disable", pathKeyDisableHelpSyn, pathKeyDisableHelpDesc, "Why the key is disabled (required; e.g. an incident id). Recorded on the key and in the lifecycle log.", true),
		path("enable", pathKeyEnableHelpSyn, pathKeyEnableHelpDesc, "Why the key is enabled again (optional). Recorded in the lifecycle log.", false),
	}
}

func (b *apikeysBackend) pathKeySetDisabled(ctx context.Context, req *logical.Request, d *framework.FieldData, disabled bool) (*logical.Response, error) {
	client, name, err := keyNames(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	changed, err := b.setKeyDisabled(ctx, req, req.Storage, client, name, disabled, d.Get("reason").(string), nil)
	if err != nil {
		return nil, err
	}
	k, err := b.getKey(ctx, req.Storage, client, name)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, userErrorf("key %s/%s does not exist", client, name)
	}
	data, _, _, err := b.keyData(ctx, req.Storage, k)
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: data}
	if !changed {
		state := "enabled"
		if disabled {
			state = "disabled"
		}
		resp.AddWarning("key " + client + "/" + name + " is already " + state + "; nothing changed")
	}
	return resp, nil
}
