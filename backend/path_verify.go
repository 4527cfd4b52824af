package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Verify outcome codes (SPEC §5), RFC 7662-style.
const (
	codeNotFound             = "not_found"
	codeMalformed            = "malformed"
	codeExpired              = "expired"
	codeRevoked              = "revoked"
	codeLocked               = "locked"
	codeForbiddenScope       = "forbidden_scope"
	codeForbiddenAudience    = "forbidden_audience"
	codeForbiddenEnvironment = "forbidden_environment"
	codeForbiddenIP          = "forbidden_ip"
	codeRateLimited          = "rate_limited"
)

// verifyInput is one verification request.
type verifyInput struct {
	Key          string
	Scopes       []string // requested scopes; all must be effective
	Audience     string
	Environment  string
	ClientIP     string
	AllowPending bool
}

// verifyResult is the outcome. When Active is false only Code is meant for
// the caller; Key etc. may be set for internal use (alerts) and must never
// be returned on an inactive answer.
type verifyResult struct {
	Active          bool
	Code            string
	Key             *Key
	Version         *KeyVersion
	Role            *Role
	Client          *Client
	EffectiveScopes []string
}

// verifyKey checks a presented key. Owned by the verify work.
func (b *apikeysBackend) verifyKey(ctx context.Context, s logical.Storage, in verifyInput) (verifyResult, error) {
	return verifyResult{Code: codeNotFound}, nil
}

// pathVerify returns the verify endpoint's paths. Owned by the verify work.
func (b *apikeysBackend) pathVerify() []*framework.Path { return nil }
