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
		// Callbacks, like verify, so the floor carries no replication-state
		// call back to Vault either: the benchmark compares like with like.
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.pathInfoRead,
			logical.UpdateOperation: b.pathInfoRead,
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
