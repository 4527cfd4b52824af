package verifier

import (
	"errors"
	"net/http"
	"time"
)

// The kinds of failure. Every error a verifier returns matches exactly one
// of them with errors.Is; errors.As with *Error gives the details.
var (
	// ErrInvalid: the credential is not one the mount issued or accepts as
	// it is: missing, malformed, unknown, signed by a key the JWKS does not
	// hold (or no longer holds), not EdDSA, of another issuer, not valid
	// yet.
	ErrInvalid = errors.New("invalid credential")
	// ErrExpired: the credential was valid and has expired (a token past
	// exp beyond the allowed skew; a key past its expiry or grace).
	ErrExpired = errors.New("expired credential")
	// ErrRevoked: the key was revoked, its client locked, or it is
	// disabled.
	ErrRevoked = errors.New("revoked credential")
	// ErrForbidden: the credential is valid but not for this request: an
	// audience, scope, environment or client address it does not cover.
	ErrForbidden = errors.New("credential not allowed for this request")
	// ErrRateLimited: the key's rate limit is used up; Error.RetryAfter
	// says when to try again.
	ErrRateLimited = errors.New("credential rate limited")
	// ErrUnavailable: no answer could be had: the network, a Vault that is
	// down, sealed or failing (5xx), a JWKS that cannot be fetched. The
	// credential may well be valid; answer 503, not 401.
	ErrUnavailable = errors.New("verification unavailable")
	// ErrRequest: Vault refused the question itself (a 4xx: the Vault token
	// lacks the policy, the mount does not exist or does not pass the
	// X-Api-Key header through, a field Vault rejects). A configuration
	// fault of the caller, not of the credential.
	ErrRequest = errors.New("verification request refused by Vault")
)

// Error is what the verifiers return. It never holds the key or token.
type Error struct {
	// Kind is one of the Err* values above; errors.Is matches it.
	Kind error
	// Code is machine-readable: for KeyVerifier the plugin's verify code
	// (not_found, revoked, forbidden_scope, ...); for TokenVerifier one of
	// the Code* constants.
	Code string
	// Detail says what happened, for logs.
	Detail string
	// RetryAfter is set on ErrRateLimited: when the used-up limit renews.
	RetryAfter time.Duration
	// Err is the underlying cause (a network or parse error), if any.
	Err error
}

// Error says the kind, the code and what happened, never the credential.
func (e *Error) Error() string {
	msg := e.Kind.Error()
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrExpired) and the like work.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Codes of TokenVerifier errors (KeyVerifier passes the plugin's codes).
const (
	CodeMalformed         = "malformed"          // not a compact JWS, or not EdDSA
	CodeUnknownKey        = "unknown_key"        // kid not among the JWKS's Ed25519 keys
	CodeBadSignature      = "bad_signature"      // the signature does not verify
	CodeWrongIssuer       = "wrong_issuer"       // iss is not TokenConfig.Issuer
	CodeNotYetValid       = "not_yet_valid"      // nbf or iat after now, beyond the skew
	CodeMissingExpiry     = "missing_exp"        // no exp claim
	CodeExpired           = "expired"            // exp before now, beyond the skew
	CodeForbiddenAudience = "forbidden_audience" // aud does not name TokenConfig.Audience
	CodeForbiddenScope    = "forbidden_scope"    // a required scope is not granted
	CodeJWKSUnavailable   = "jwks_unavailable"   // the JWKS could not be fetched
	CodeMissing           = "missing"            // an empty key or token
)

func newError(kind error, code, detail string, cause error) *Error {
	return &Error{Kind: kind, Code: code, Detail: detail, Err: cause}
}

// HTTPStatus is the status a gateway answers a request with after err from
// a verifier: 200 (nil), 401 (invalid, expired), 403 (revoked, forbidden),
// 429 (rate limited; send Retry-After from Error.RetryAfter), 503
// (unavailable, or Vault refused the question: the caller cannot fix it).
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrExpired):
		return http.StatusUnauthorized
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	default:
		return http.StatusServiceUnavailable
	}
}
