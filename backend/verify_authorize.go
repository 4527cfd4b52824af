package backend

import (
	"net/http"
	"slices"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// The status-code form of verify (verify/authorize) answers what a reverse
// proxy's sub-request authorization understands: the HTTP status. nginx
// auth_request, Envoy ext_authz and Traefik forwardAuth let a request
// through on 2xx and refuse it otherwise, and pass named headers of a 2xx
// answer on to the upstream.
//
// How the answer reaches the proxy through Vault 1.13: the router keeps a
// plugin's response headers only if the mount's allowed_response_headers
// names them (case-insensitively; none at all when the list is empty,
// vault/router.go), the HTTP handler adds those to the reply whatever the
// response type (http/handler.go), and a response whose data holds
// http_status_code is written raw: that status, http_content_type and
// http_raw_body as they are (respondRaw, http/logical.go). The other way,
// the plugin sees a request header only if passthrough_request_headers
// names it, and never X-Vault-Token.

// codeMissingKey is the authorize form's code for a request without the
// X-Api-Key header: to a proxy that is a caller without credentials (401),
// not a bad request of the proxy's own.
const codeMissingKey = "missing_key"

// authorizeStatus maps every verify code to the status the proxy passes on.
// 401: no key the mount knows (the caller must present a valid one).
// 403: a key the mount knows, refused as it stands or for this request.
// 429: the key is valid but over a rate limit; Retry-After says when.
// A code missing here would answer 500 (TestAuthorizeStatusCoversEveryCode
// fails first), which every proxy treats as an error of its own.
var authorizeStatus = map[string]int{
	codeMissingKey:                  http.StatusUnauthorized,
	record.CodeMalformed:            http.StatusUnauthorized,
	record.CodeNotFound:             http.StatusUnauthorized,
	record.CodeExpired:              http.StatusForbidden,
	record.CodeRevoked:              http.StatusForbidden,
	record.CodeLocked:               http.StatusForbidden,
	record.CodeDisabled:             http.StatusForbidden,
	record.CodeForbiddenEnvironment: http.StatusForbidden,
	record.CodeForbiddenIP:          http.StatusForbidden,
	record.CodeForbiddenAudience:    http.StatusForbidden,
	record.CodeForbiddenScope:       http.StatusForbidden,
	record.CodeRateLimited:          http.StatusTooManyRequests,
}

// The identity headers of an accepted key, and the code of a refused one.
// The mount passes them only when its allowed_response_headers lists them.
const (
	headerClient = "X-Apikeys-Client"
	headerKeyID  = "X-Apikeys-Key-Id"
	headerOwner  = "X-Apikeys-Owner"
	headerScope  = "X-Apikeys-Scope"
	headerCode   = "X-Apikeys-Code"
)

// authorizeStatusOf is the status of a verify outcome.
func authorizeStatusOf(res record.VerifyResult) int {
	if res.Active {
		return http.StatusOK
	}
	if s, ok := authorizeStatus[res.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// authorizeHeaders are the response headers of an authorize answer: the
// rate-limit headers as on the GET form, and either the identity of an
// accepted key or the code of a refused one. Client names, key ids and
// scopes are restricted to header-safe characters where they are created;
// an owner is free text (any Unicode, spaces, even line breaks), so it is
// always percent-encoded. The key itself is never among them.
func authorizeHeaders(res record.VerifyResult, now time.Time) map[string][]string {
	h := rateLimitHeaders(res, now)
	if h == nil {
		h = make(map[string][]string, 4)
	}
	if !res.Active {
		h[headerCode] = []string{res.Code}
		return h
	}
	k := res.Key
	h[headerClient] = []string{k.Client}
	h[headerKeyID] = []string{k.KeyID}
	h[headerScope] = []string{scopes.Join(res.EffectiveScopes)}
	// The owner is as private in a header as in a body: only when the
	// role's verify_response_fields lists it. Otherwise it is sent empty,
	// so that a proxy that copies these headers upstream (Envoy's
	// allowed_upstream_headers) overwrites one a caller forged.
	owner := ""
	if slices.Contains(res.Role.VerifyResponseFields, "owner") {
		owner = percentEncode(k.Owner)
	}
	h[headerOwner] = []string{owner}
	return h
}

// percentEncode writes s as UTF-8 with every byte outside RFC 3986's
// unreserved characters as %XX, so any value is a valid header value and
// any URL decoder restores it.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			buf = append(buf, c)
			continue
		}
		buf = append(buf, '%', hex[c>>4], hex[c&15])
	}
	return string(buf)
}
