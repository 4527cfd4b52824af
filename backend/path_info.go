package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathInfoHelpSyn = `Report the plugin's version.`
const pathInfoHelpDesc = `
Returns the running plugin version. The handler touches no storage, so it is
also the cheapest round trip through Vault to the plugin: "make bench" uses it
as the floor that verify throughput is compared against.
`

func (b *apikeysBackend) pathInfo() []*framework.Path {
	return []*framework.Path{{
		Pattern: "info$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "info",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: b.pathInfoRead},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathInfoRead},
		},
		HelpSynopsis:    pathInfoHelpSyn,
		HelpDescription: pathInfoHelpDesc,
	}}
}

func (b *apikeysBackend) pathInfoRead(_ context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]interface{}{
		"plugin":  "vault-plugin-secrets-apikeys",
		"version": Version,
	}}, nil
}
