package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"
)

// rotateKeyApproved is a rotation asked for through the API. A rotation
// hands its caller a working secret of the key, just as issuance does, so a
// role with requires_approval rotates by hand only against an approved
// request for this key, used up exactly as issuance uses it (approval.go):
// reserved, bound to the version the rotation creates before its commit,
// marked used after it. Scheduled rotations (no caller gets the secret)
// need none. The caller must not hold the key's lock.
func (b *apikeysBackend) rotateKeyApproved(ctx context.Context, req *logical.Request, client, name string, stage bool, approvalID string) (*rotateResult, error) {
	defer b.locks.lockKey(client, name)()
	s := req.Storage
	k, role, c, cfg, err := b.loadKeyForRotation(ctx, s, client, name)
	if err != nil {
		return nil, err
	}
	if !role.RequiresApproval {
		if approvalID != "" {
			// As for issuance: recording an approval nobody needed would
			// show an auditor a separation of duties that did not happen.
			return nil, userErrorf("role %q does not require approval; omit approval_id", role.Name)
		}
		return b.rotateLoadedLocked(ctx, req, s, k, role, c, cfg, stage, nil)
	}
	use, err := b.reserveApproval(ctx, req, approvalTarget{client: client, role: role.Name, name: name, approvalID: approvalID, rotation: true})
	if err != nil {
		return nil, err
	}
	defer use.release()
	if err := use.bind(ctx, s, k.KeyID, k.LatestVersion()+1); err != nil {
		return nil, err
	}
	k.NextApproval = approvalID
	res, err := b.rotateLoadedLocked(ctx, req, s, k, role, c, cfg, stage, nil)
	if err != nil {
		return nil, err
	}
	if err := use.complete(ctx, s, res.key); err != nil {
		return nil, err
	}
	return res, nil
}
