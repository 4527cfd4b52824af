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
	CodeDisabled             = "disabled"
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
	// that the deciding tick will keep (the backend's retirementPending).
	RetirementPending bool
	// Rate is the tightest rate limit that applied (Limit 0: none);
	// RetryAfter, on rate_limited, is when every used-up budget renews.
	Rate       RateState
	RetryAfter time.Duration
}

// OutcomeActive is the outcome of an accepted key (every other outcome is a
// refusal, named by its code).
const OutcomeActive = "active"

// Outcome is one answer verify can give and what the rest of the engine
// makes of it.
type Outcome struct {
	// Code is OutcomeActive or the refusal's code.
	Code string
	// Refusal tells the caller of a token exchange why this outcome
	// refuses it ("" for OutcomeActive).
	Refusal string
	// Alert is the alert type an occurrence counts toward ("" for none).
	Alert string
}

// Outcomes lists every verify outcome once, in a fixed order: usage counts
// per key are indexed by it, metrics report each outcome even when zero,
// token exchange explains its refusals with it and the detector raises its
// alerts from it. A new code is added here and nowhere else.
var Outcomes = [...]Outcome{
	{Code: OutcomeActive},
	{Code: CodeNotFound, Refusal: "the key is not known to this mount"},
	{Code: CodeMalformed, Refusal: "the key is malformed (wrong format or checksum)"},
	{Code: CodeExpired, Refusal: "the key has expired"},
	{Code: CodeRevoked, Refusal: "the key is revoked"},
	{Code: CodeLocked, Refusal: "the key's client is locked"},
	{Code: CodeForbiddenScope, Refusal: "the key does not grant every requested scope", Alert: AlertForbiddenScope},
	{Code: CodeForbiddenAudience, Refusal: "the key is not valid for the requested audience", Alert: AlertForbiddenAudience},
	{Code: CodeForbiddenEnvironment, Refusal: "the key is not valid for this environment"},
	{Code: CodeForbiddenIP, Refusal: "the key may not be used from this address", Alert: AlertForbiddenIP},
	{Code: CodeRateLimited, Refusal: "the key is over its rate limit; retry later"},
	{Code: CodeDisabled, Refusal: "the key is disabled"},
}

// OutcomeIndex is code's position in Outcomes, or -1 for an unknown code.
func OutcomeIndex(code string) int {
	for i, o := range Outcomes {
		if o.Code == code {
			return i
		}
	}
	return -1
}

// RefusalReason says why a token exchange answered with code is refused.
func RefusalReason(code string) string {
	if i := OutcomeIndex(code); i >= 0 && Outcomes[i].Refusal != "" {
		return Outcomes[i].Refusal
	}
	return "the key is not accepted"
}

// AlertTypeOf is the alert type an outcome counts toward ("" for none).
func AlertTypeOf(code string) string {
	if i := OutcomeIndex(code); i >= 0 {
		return Outcomes[i].Alert
	}
	return ""
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

// RateState is the state of the tightest rate limit that applied to a
// verify (Limit 0: none applied): at most Limit within the window,
// Remaining left in it, and the window ends at Reset.
type RateState struct {
	Limit     int
	Remaining int
	Reset     time.Time
}
