package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/hashicorp/vault/sdk/logical"
)

// logTreeTickBudget bounds the log entries one periodic tick checks and
// adds to the tree: about a second of storage reads, and more than a
// minute of appends at the plugin's issuance rate, so the tree keeps up.
const logTreeTickBudget = 20000

// logTreeTick grows the log's tree by the entries appended since the last
// tick (verifying their chain links as it goes) and signs a checkpoint when
// the interval has passed.
func (b *apikeysBackend) logTreeTick(ctx context.Context, req *logical.Request) error {
	cfg, err := b.logConfig(ctx, req.Storage)
	if err != nil {
		return err
	}
	p, cp, err := b.tree.Step(ctx, req.Storage, logTreeTickBudget, cfg.CheckpointInterval, b.clock.Now())
	if err != nil {
		return err
	}
	if p.BrokenAt != 0 && p.Added > 0 {
		b.logger.Error("the lifecycle log's hash chain does not verify; checkpoints stop before the break", "broken_at", p.BrokenAt, "reason", p.Reason)
	}
	if cp != nil {
		b.logger.Debug("signed a log checkpoint", "size", cp.Size)
	}
	return nil
}

// logOrigin names the mount's log in checkpoints: Vault's id of the mount,
// which a remount keeps, or a random id where Vault gave none.
func (b *apikeysBackend) logOrigin() string {
	if b.backendUUID != "" {
		return "vault-apikeys/" + b.backendUUID
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "vault-apikeys/" + hex.EncodeToString(r[:])
}
