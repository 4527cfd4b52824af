package verifier

import (
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// verifyAnswer is the plugin's verify answer: the RFC 7662 document of the
// GET form, or the data of the POST form (the same fields).
type verifyAnswer struct {
	Active         bool              `json:"active"`
	Code           string            `json:"code"`
	RetryAfter     int64             `json:"retry_after"`
	KeyID          string            `json:"key_id"`
	Client         string            `json:"client"`
	Role           string            `json:"role"`
	Scope          string            `json:"scope"`
	Aud            []string          `json:"aud"`
	Environment    string            `json:"environment"`
	Exp            int64             `json:"exp"`
	Iat            int64             `json:"iat"`
	Version        int               `json:"version"`
	State          string            `json:"state"`
	Owner          string            `json:"owner"`
	Purpose        string            `json:"purpose"`
	KeyMetadata    map[string]string `json:"key_metadata"`
	ClientMetadata map[string]string `json:"client_metadata"`
	RateLimit      *struct {
		Limit     int   `json:"limit"`
		Remaining int   `json:"remaining"`
		Reset     int64 `json:"reset"`
	} `json:"rate_limit"`
}

// refusalKinds sorts the plugin's refusal codes (backend/record, "the one
// list of verify outcomes") into the error kinds. A code this list does not
// know yet is ErrInvalid: refused, for a reason to read in Code.
var refusalKinds = map[string]error{
	"malformed":             ErrInvalid,
	"not_found":             ErrInvalid,
	"expired":               ErrExpired,
	"revoked":               ErrRevoked,
	"locked":                ErrRevoked,
	"disabled":              ErrRevoked,
	"forbidden_scope":       ErrForbidden,
	"forbidden_audience":    ErrForbidden,
	"forbidden_environment": ErrForbidden,
	"forbidden_ip":          ErrForbidden,
	"rate_limited":          ErrRateLimited,
}

func (a *verifyAnswer) refusal() *Error {
	kind, ok := refusalKinds[a.Code]
	if !ok {
		kind = ErrInvalid
	}
	e := newError(kind, a.Code, "refused by the mount's verify", nil)
	if kind == ErrRateLimited {
		e.RetryAfter = time.Duration(a.RetryAfter) * time.Second
	}
	return e
}

func (a *verifyAnswer) info() *KeyInfo {
	info := &KeyInfo{
		KeyID:          a.KeyID,
		Client:         a.Client,
		Role:           a.Role,
		Scopes:         scopes.Split(a.Scope),
		Audiences:      a.Aud,
		Environment:    a.Environment,
		Version:        a.Version,
		State:          a.State,
		Owner:          a.Owner,
		Purpose:        a.Purpose,
		KeyMetadata:    a.KeyMetadata,
		ClientMetadata: a.ClientMetadata,
	}
	if a.Exp > 0 {
		info.Expiry = time.Unix(a.Exp, 0).UTC()
	}
	if a.Iat > 0 {
		info.IssuedAt = time.Unix(a.Iat, 0).UTC()
	}
	if r := a.RateLimit; r != nil {
		info.RateLimit = &RateLimit{Limit: r.Limit, Remaining: r.Remaining, Reset: time.Duration(r.Reset) * time.Second}
	}
	return info
}

// HasScope reports whether the key's effective scopes cover scope, with
// the plugin's wildcard rules.
func (k *KeyInfo) HasScope(scope string) bool { return scopes.Covers(k.Scopes, scope) }

// String names the key without anything secret, for logs.
func (k *KeyInfo) String() string {
	return "key " + k.KeyID + " of client " + k.Client + " (scopes: " + strings.Join(k.Scopes, " ") + ")"
}
