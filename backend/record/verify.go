package record

import "time"

// Verify outcome codes (SPEC §5), RFC 7662-style.
const (
	CodeNotFound             = "not_found"
	CodeMalformed            = "malformed"
	CodeExpired              = "expired"
	CodeRevoked              = "revoked"
	CodeLocked               = "locked"
	CodeForbiddenScope       = "forbidden_scope"
	CodeForbiddenAudience    = "forbidden_audience"
	CodeForbiddenEnvironment = "forbidden_environment"
	CodeForbiddenIP          = "forbidden_ip"
	CodeRateLimited          = "rate_limited"
)

// VerifyInput is one verification request.
type VerifyInput struct {
	Key          string
	Scopes       []string // requested scopes; all must be effective
	Audience     string
	Environment  string
	ClientIP     string
	AllowPending bool
}

// VerifyResult is the outcome. When Active is false only Code is meant for
// the caller; Key etc. may be set for internal use (alerts) and must never
// be returned on an inactive answer.
type VerifyResult struct {
	Active          bool
	Code            string
	Key             *Key
	Version         *KeyVersion
	Role            *Role
	Client          *Client
	EffectiveScopes []string
	// RetirementPending: Version is a previous version past its grace
	// that the deciding tick will keep (retirementPending).
	RetirementPending bool
}

// OutcomeActive counts successful verifies in KeyUsage.Counts.
const OutcomeActive = "active"

// UsageOutcomes lists every outcome counted per key, in a fixed order.
var UsageOutcomes = [...]string{
	OutcomeActive, CodeNotFound, CodeMalformed, CodeExpired, CodeRevoked, CodeLocked,
	CodeForbiddenScope, CodeForbiddenAudience, CodeForbiddenEnvironment, CodeForbiddenIP, CodeRateLimited,
}

func OutcomeIndex(code string) int {
	for i, c := range UsageOutcomes {
		if c == code {
			return i
		}
	}
	return -1
}

// KeyUsage is a key's verify usage as stored on its record.
type KeyUsage struct {
	// Counts of verify outcomes ("active" for success, else the code).
	Counts map[string]uint64 `json:"counts,omitempty"`
	// RecentSources are the latest distinct client_ip values of successful
	// verifies, most recent first.
	RecentSources []string `json:"recent_sources,omitempty"`
}

// Expiry is the "exp" of an accepted version: the key's hard expiry, or the
// end of a previous version's grace if earlier (zero: none). A version
// waiting for the tick that decides its retirement is good until that
// decision's bound, never an exp already past.
func (res VerifyResult) Expiry() time.Time {
	k, v := res.Key, res.Version
	exp := k.ExpiresAt
	end := v.GraceEndsAt
	if res.RetirementPending {
		end = end.Add(RetirementDecisionBound)
	}
	if v.State == StatePrevious && (exp.IsZero() || end.Before(exp)) {
		exp = end
	}
	return exp
}
