package backend

import (
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// documentedPaths completes what the OpenAPI document says of each
// operation, for readers and for the OpenAPI linter integration/openapi
// runs (its operation-summary and operation-4xx-response rules).
//
// A Summary where there is none: the operation's DisplayAttrs read as a
// phrase, the same words Vault's operation ids are made of:
// "list-client-keys" is "List client keys", and the framework's default
// verb for an update, "write", is "Create or update". Callbacks paths
// already get their HelpSynopsis from the framework.
//
// A 400 response on every operation of a path that takes fields: the
// request guard refuses unknown fields and values over their limit, and
// the handlers invalid values, all with a 400 that names the field.
func documentedPaths(paths []*framework.Path) []*framework.Path {
	for _, p := range paths {
		for op, h := range p.Operations {
			po, ok := h.(*framework.PathOperation)
			if !ok {
				continue
			}
			if po.Summary == "" {
				po.Summary = operationSummary(p, op, po.DisplayAttrs)
			}
			if len(p.Fields) > 0 && !declaresClientError(po.Responses) {
				if po.Responses == nil {
					po.Responses = map[int][]framework.Response{}
				}
				po.Responses[http.StatusBadRequest] = []framework.Response{{Description: badRequestDescription}}
			}
		}
	}
	return paths
}

const badRequestDescription = "Bad request: an unknown field, or a value over its limit or otherwise invalid; the error names the field."

func declaresClientError(responses map[int][]framework.Response) bool {
	for status := range responses {
		if status >= 400 && status < 500 {
			return true
		}
	}
	return false
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
