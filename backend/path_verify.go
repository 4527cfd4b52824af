package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

const pathVerifyHelpSyn = `Verify a presented API key (RFC 7662-style introspection).`
const pathVerifyHelpDesc = `
API gateways and resource servers send the key a caller presented, plus what
the caller wants to do with it, and get an answer in the shape of OAuth token
introspection (RFC 7662).

An accepted key answers "active": true with key_id, client, role, scope (the
effective scopes: the key's scopes intersected with its role's current
scopes, space-separated), aud (the role's audiences), environment, exp (unix
time the key or, for a previous version, its grace period ends; absent when
none), iat (unix time the version was created), version and state (active,
previous, or pending with allow_pending). It adds what the role's
verify_response_fields list (owner, client_metadata, key_metadata, purpose;
none by default) and, when a rate limit applies (the role's per key, the
client's shared rate_limit, a client restriction's), rate_limit: {limit,
remaining, reset} of the tightest one (reset: seconds until its window ends).
The GET form also sends them as RateLimit-Limit, RateLimit-Remaining and
RateLimit-Reset response headers; Vault passes a plugin's response headers
only when the mount lists them: tune it with allowed_response_headers=
RateLimit-Limit,RateLimit-Remaining,RateLimit-Reset,Retry-After.

A refused key answers "active": false and a machine-readable code, and
nothing else (but retry_after on rate_limited: seconds until every used-up
limit renews; the GET form also sends Retry-After): malformed (format or checksum wrong; checked without any
storage access), not_found (also a pending version without allow_pending),
expired (retired, past its grace period or its hard expiry), revoked (also
every key of a de-provisioned client), locked (client locked),
forbidden_environment (environment differs from the key's, or the key's is no
longer among the client's allowed_environments),
forbidden_ip (client_ip outside the client's, role's or client restriction's
bound_cidrs; when any has bound_cidrs, client_ip is required),
forbidden_audience (audience not among the role's audiences, or no audience
for a role that names audiences unless the mount's verify_audience_optional
is set), forbidden_scope (a requested scope is not
effective, also outside an active client restriction's scopes; also, with
or without a scope asked for, a key left with no effective scope at all
because its role or a restriction narrowed it), rate_limited (the role's
rate_limit per key, the client's rate_limit shared by its keys or a client
restriction's is used up; counted per Vault node; a refused verify spends
none of them). The checks run
in this order. Either way the HTTP status is 200; only a request without a
key (no "key" field on POST, no X-Api-Key header on GET), with an unknown
field, or with a field over its limit (see the fields) is a 400.

Two forms, with the same answers:

  POST (write) with the key in the "key" body field and the other fields in
  the body. Needs the "update" capability on the verify path. The answer is
  in Vault's usual response envelope, under "data".

  GET (read) with the key in the X-Api-Key request header and scope,
  audience, environment, client_ip and allow_pending as query parameters.
  Needs the "read" capability. This is the form for API gateways: Vault makes
  an extra round trip to the plugin (an existence check) before every write,
  so a read is faster. Vault passes the header to the plugin only when the
  mount is tuned with passthrough_request_headers=X-Api-Key (the header name
  is case-insensitive). Never put the key in the URL: a GET with a "key" query
  parameter is refused. A GET without the header is a 400. The answer is
  the RFC 7662 document itself (a top-level JSON object), not wrapped in
  Vault's envelope, so standard introspection clients can read it.

Usage (last used, outcome counts, recent client_ip values) is recorded in
memory and flushed to the key records about once a minute; key reads show
it at once. A revoke, lock or role change applies to the very next verify:
the caches behind verify are updated before those calls return.
`

func (b *apikeysBackend) pathVerify() []*framework.Path {
	return []*framework.Path{{
		Pattern: "verify$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "verify",
			OperationSuffix: "key",
		},
		Fields: withFields(map[string]*framework.FieldSchema{
			"key": {
				Type:        framework.TypeString,
				Description: "The API key presented by the caller (POST only; a GET sends it in the X-Api-Key header, never in the URL).",
				Required:    true,
			},
		}, verifyParams(false)),
		// Callbacks rather than Operations on purpose: for a path with
		// Operations the framework asks Vault for the replication state on
		// every request (to forward writes from performance standbys), one
		// extra plugin→Vault gRPC round trip. Verify never writes storage
		// and must answer locally on every node, so the hot path skips it.
		// The read form exists for speed: Vault makes no existence-check
		// round trip before a read, as it does before every write.
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.pathVerifyWrite,
			logical.ReadOperation:   b.pathVerifyRead,
		},
		HelpSynopsis:    pathVerifyHelpSyn,
		HelpDescription: strings.TrimSpace(pathVerifyHelpDesc),
	}}
}

// verifyParams are the fields every form of verify takes besides the key.
// query marks them as query parameters in the OpenAPI document, for a path
// that is only read (verify/authorize).
func verifyParams(query bool) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"scope": {
			Type:        framework.TypeCommaStringSlice,
			Query:       query,
			Description: "Scopes the caller needs, separated by spaces or commas; each must be among the key's effective scopes.",
		},
		"audience": {
			Type:        framework.TypeString,
			Query:       query,
			Description: "The API / resource server asking; must be one of the role's audiences, and is required when the role names any (unless the mount's verify_audience_optional is set).",
		},
		"environment": {
			Type:        framework.TypeString,
			Query:       query,
			Description: "The environment the key is presented in; must match the key's environment.",
		},
		"client_ip": {
			Type:        framework.TypeString,
			Query:       query,
			Description: "Address the caller connected from (an IP address, optionally with a port); checked against the client's and the role's bound_cidrs. Anything else is refused with HTTP 400.",
		},
		"allow_pending": {
			Type:        framework.TypeBool,
			Query:       query,
			Description: "Also accept a staged (pending) version, e.g. to validate it in staging before promoting it.",
		},
	}
}

// withFields adds more to fields.
func withFields(fields, more map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	for k, v := range more {
		fields[k] = v
	}
	return fields
}

// pathVerifyWrite is the POST form: the key in the "key" body field.
func (b *apikeysBackend) pathVerifyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	raw, ok := d.GetOk("key")
	if !ok {
		return nil, userErrorf(`missing "key": send the API key to verify in the "key" field`)
	}
	in, err := verifyInputFrom(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	in.Key = raw.(string)
	return b.answerVerify(ctx, req, in)
}

// pathVerifyRead is the GET form: the key in the X-Api-Key header, the
// rest as query parameters.
func (b *apikeysBackend) pathVerifyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if _, inURL := d.Raw["key"]; inURL {
		// Too late for this key (URLs end up in proxy and access logs),
		// but it must not become a habit: refuse rather than answer.
		return nil, userErrorf(`never put an API key in the URL: send it in the ` + verifyKeyHeader + ` header (or POST it in the "key" field)`)
	}
	key, err := keyFromHeaders(req.Headers)
	switch err {
	case nil:
	case errManyKeyHeaders:
		return nil, userErrorf(`send exactly one ` + verifyKeyHeader + ` header`)
	default:
		return nil, userErrorf(`missing ` + verifyKeyHeader + ` header: send the API key to verify in the ` + verifyKeyHeader +
			` header (the mount must pass it through: passthrough_request_headers=` + verifyKeyHeader + `), or POST it in the "key" field`)
	}
	in, err := verifyInputFrom(d)
	if err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	in.Key = key
	res, err := b.verifyKey(ctx, req.Storage, in)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	resp := introspectionDocument(res, now)
	resp.Headers = rateLimitHeaders(res, now)
	return resp, nil
}

// introspectionDocument answers the GET form with the RFC 7662 document
// itself: a top-level JSON object, as introspection clients in gateways
// expect, instead of Vault's response envelope. Vault passes the bytes
// through rather than decoding and re-encoding every field, which makes the
// hot path measurably cheaper. The POST form keeps the envelope that the
// vault CLI and API clients read.
func introspectionDocument(res record.VerifyResult, now time.Time) *logical.Response {
	bufp := documentBufs.Get().(*[]byte)
	doc := appendAnswer((*bufp)[:0], res, now)
	body := append([]byte(nil), doc...) // the response outlives the pooled buffer
	*bufp = doc
	documentBufs.Put(bufp)
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}
}

// verifyInputFrom reads every verify field but the key, which each form
// takes from its own place. A client_ip that is not an address is refused
// whether or not CIDRs are bound: a gateway sending garbage there would
// otherwise pass unnoticed until the first binding locks its callers out.
func verifyInputFrom(d *framework.FieldData) (record.VerifyInput, error) {
	in := record.VerifyInput{
		Audience:     d.Get("audience").(string),
		Environment:  d.Get("environment").(string),
		ClientIP:     strings.TrimSpace(d.Get("client_ip").(string)),
		AllowPending: d.Get("allow_pending").(bool),
	}
	if in.ClientIP != "" {
		if _, ok := record.ParseIP(in.ClientIP); !ok {
			return in, errors.New("client_ip must be an IP address, optionally with a port (e.g. 10.1.2.3, 10.1.2.3:443 or 2001:db8::1)")
		}
	}
	if v, ok := d.GetOk("scope"); ok {
		for _, s := range v.([]string) {
			in.Scopes = append(in.Scopes, scopes.Split(s)...)
		}
	}
	return in, nil
}

// answerVerify verifies for both forms and renders the answer.
func (b *apikeysBackend) answerVerify(ctx context.Context, req *logical.Request, in record.VerifyInput) (*logical.Response, error) {
	res, err := b.verifyKey(ctx, req.Storage, in)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: verifyAnswerData(res, b.clock.Now())}, nil
}

// verifyResponseData renders a result; an inactive one reveals only its code.
func verifyResponseData(res record.VerifyResult) map[string]interface{} {
	if !res.Active {
		return map[string]interface{}{"active": false, "code": res.Code}
	}
	k, v := res.Key, res.Version
	data := map[string]interface{}{
		"active":      true,
		"key_id":      k.KeyID,
		"client":      k.Client,
		"role":        k.Role,
		"scope":       scopes.Join(res.EffectiveScopes),
		"aud":         nonNil(res.Role.Audiences),
		"environment": k.Environment,
		"iat":         v.CreatedAt.Unix(),
		"version":     v.Version,
		"state":       v.State,
	}
	if exp := res.Expiry(); !exp.IsZero() {
		data["exp"] = exp.Unix()
	}
	return data
}
