package backend

import (
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// summarizedPaths gives every operation without a Summary one, so the
// OpenAPI document names each operation in a few words (an OpenAPI
// linter's operation-summary rule, run by integration/openapi). It is the
// operation's DisplayAttrs read as a phrase, the same words Vault's
// operation ids are made of: "list-client-keys" is "List client keys", and
// the framework's default verb for an update, "write", is "Create or
// update". Callbacks paths already get their HelpSynopsis from the
// framework.
func summarizedPaths(paths []*framework.Path) []*framework.Path {
	for _, p := range paths {
		for op, h := range p.Operations {
			po, ok := h.(*framework.PathOperation)
			if !ok || po.Summary != "" {
				continue
			}
			po.Summary = operationSummary(p, op, po.DisplayAttrs)
		}
	}
	return paths
}

// operationSummary is "<Verb> <suffix>" from the operation's or else the
// path's DisplayAttrs, or the path's synopsis when they name no verb.
func operationSummary(p *framework.Path, op logical.Operation, attrs *framework.DisplayAttributes) string {
	var verb, suffix string
	for _, a := range []*framework.DisplayAttributes{attrs, p.DisplayAttrs} {
		if a == nil {
			continue
		}
		if verb == "" {
			verb = a.OperationVerb
		}
		if suffix == "" {
			suffix = a.OperationSuffix
		}
	}
	if suffix == "" && verb == "" {
		return strings.TrimSuffix(strings.TrimSpace(p.HelpSynopsis), ".")
	}
	if verb == "" {
		verb = string(op)
		if op == logical.UpdateOperation {
			verb = "create or update"
		}
	}
	words := strings.TrimSpace(strings.ReplaceAll(verb+" "+suffix, "-", " "))
	return strings.ToUpper(words[:1]) + words[1:]
}
