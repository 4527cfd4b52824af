package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const pathVerifyAuthorizeHelpSyn = `Verify a presented API key for a reverse proxy: the answer is the HTTP status.`
const pathVerifyAuthorizeHelpDesc = `
The form of verify for a reverse proxy's sub-request authorization (nginx
auth_request, Envoy ext_authz, Traefik forwardAuth): the proxy forwards the
caller's X-Api-Key header here (GET, never the key in the URL), lets the
request through on 200 and refuses it otherwise. The checks, their order,
the query parameters (scope, audience, environment, client_ip,
allow_pending) and the usage recorded are those of the GET form of verify.

  Status  Codes
  200     (active)
  401     missing_key (no X-Api-Key header, or more than one), malformed,
          not_found
  403     expired, revoked, locked, disabled, forbidden_environment,
          forbidden_ip, forbidden_audience, forbidden_scope
  429     rate_limited, with Retry-After (seconds)

401 means no key the mount knows; 403 a key it knows, refused as it stands
or for this request. A request the proxy got wrong (an unknown or oversized
query parameter, a client_ip that is not an address, a key in the URL) is a
400, and Vault's own refusals (a bad token, a policy without read on this
path) stay Vault's 403: the nginx configuration in bootstrap/gateways tells
that 403 from a refused key by the X-Apikeys-Code header.

The body is the GET form's RFC 7662 document. The headers: on 200,
X-Apikeys-Client, X-Apikeys-Key-Id, X-Apikeys-Scope (effective scopes,
space-separated) and X-Apikeys-Owner (percent-encoded UTF-8, as owners are
free text; empty unless the role's verify_response_fields lists owner);
otherwise X-Apikeys-Code (the code above). Where a rate limit applies, RateLimit-Limit,
RateLimit-Remaining and RateLimit-Reset, and Retry-After on 429. Vault passes
a plugin's response headers only when the mount lists them in
allowed_response_headers, and the X-Api-Key request header only with
passthrough_request_headers=X-Api-Key. Needs the "read" capability.
`

// authorizeHeaderNames are the response headers verify/authorize may set,
// for the mount's allowed_response_headers (see the README's tune).
var authorizeHeaderNames = []string{
	headerClient, headerKeyID, headerOwner, headerScope, headerCode,
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After",
}

func (b *apikeysBackend) pathVerifyAuthorize() []*framework.Path {
	return []*framework.Path{{
		Pattern: "verify/authorize$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "authorize",
			OperationSuffix: "key",
		},
		Fields: verifyParams(true),
		// Callbacks, not Operations, for the reason given in path_verify.go:
		// this is verify's hot path too.
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.pathVerifyAuthorizeRead,
		},
		HelpSynopsis:    pathVerifyAuthorizeHelpSyn,
		HelpDescription: strings.TrimSpace(pathVerifyAuthorizeHelpDesc),
	}}
}

// pathVerifyAuthorizeRead answers with the status a proxy acts on. The key
// comes only from the X-Api-Key header: there is no "key" field, so one in
// the URL is an unknown field, refused with a 400 before this runs.
func (b *apikeysBackend) pathVerifyAuthorizeRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	in, err := verifyInputFrom(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	now := b.clock.Now()
	key, err := keyFromHeaders(req.Headers)
	if err != nil {
		// No header, or several: the caller presented no usable key. A 400
		// here would reach the caller as a 500 through nginx.
		return authorizeAnswer(record.VerifyResult{Code: codeMissingKey}, now), nil
	}
	in.Key = key
	res, err := b.verifyKey(ctx, req.Storage, in)
	if err != nil {
		return nil, err
	}
	return authorizeAnswer(res, now), nil
}

// authorizeAnswer is the raw response: the status, the GET form's document
// as the body, and the headers.
func authorizeAnswer(res record.VerifyResult, now time.Time) *logical.Response {
	resp := introspectionDocument(res, now)
	resp.Data[logical.HTTPStatusCode] = authorizeStatusOf(res)
	resp.Headers = authorizeHeaders(res, now)
	return resp
}
