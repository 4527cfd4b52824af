package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Governance (SPEC §6, §7): approvals, leaks, alerts, metrics, policy.
// Owned by the governance work.

// pathGovernance returns the governance paths.
func (b *apikeysBackend) pathGovernance() []*framework.Path { return nil }

// consumeApproval checks and uses up the approved request that a role with
// requires_approval needs. It returns a message for the caller when the
// issuance must be refused.
func (b *apikeysBackend) consumeApproval(ctx context.Context, req *logical.Request, in issueInput) (string, error) {
	return "role requires an approved request (requires_approval), and this mount has no approval workflow yet; set requires_approval=false", nil
}

// onRoleScopesWidened runs after a role update allowed more scopes.
func (b *apikeysBackend) onRoleScopesWidened(ctx context.Context, req *logical.Request, r *Role, widened []string) error {
	return nil
}

// governanceTick runs background governance work (idle keys, review, alerts).
func (b *apikeysBackend) governanceTick(ctx context.Context, req *logical.Request) error { return nil }

// onVerify observes every verify outcome (for alerts and metrics). It runs
// on the hot path: it must not touch storage; buffer and flush in
// governanceTick instead.
func (b *apikeysBackend) onVerify(in verifyInput, res verifyResult) {}
