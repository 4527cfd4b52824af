package backend

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/logical"
)

// periodic is Vault's PeriodicFunc (about once a minute). Background work
// writes storage, so it runs only where this node may write: not on
// performance standbys or performance secondaries.
func (b *apikeysBackend) periodic(ctx context.Context, req *logical.Request) error {
	if !b.writeSafe() {
		return nil
	}
	// Background workers a failed or cancelled initialization left
	// stopped start here.
	b.ensureOperations(ctx, b.storage)
	b.ensureOutbox()
	return errors.Join(
		b.flushUsage(ctx, req),
		b.rotationTick(ctx, req),
		// Before the governance sweep, so the sweep does not read keys
		// that are about to be purged.
		b.leasePurgeTick(ctx, req),
		b.governanceTick(ctx, req),
		b.signing.Tick(ctx, req.Storage),
		b.keyIDBackfillTick(ctx, req),
		b.tombstoneBackfillTick(ctx, req),
		b.pruneOperations(ctx, req),
		b.logTreeTick(ctx, req),
		b.logArchiveTick(ctx, req),
		b.retentionTick(ctx, req),
	)
}

// writeSafe reports whether background writes are allowed on this node.
func (b *apikeysBackend) writeSafe() bool {
	if b.System() == nil {
		return true // unit tests without a system view
	}
	return b.WriteSafeReplicationState()
}

// initialize runs once when the mount starts (InitializeFunc): it starts
// loading the key schedules and makes sure a token signing key exists, so the
// unauthenticated jwks read never has to write.
func (b *apikeysBackend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	if b.writeSafe() {
		// Before anything reads keys: a change a previous process left
		// half-done is finished or undone now, not minutes later. A
		// failure leaves the entries to Vault's WAL rollback.
		if n, err := b.settleWALs(ctx, req.Storage); err != nil {
			b.logger.Error("settling interrupted key changes at mount start failed; Vault's WAL rollback retries them", "settled", n, "error", err)
		} else if n > 0 {
			b.logger.Info("settled interrupted key changes at mount start", "settled", n)
		}
	}
	if err := b.initRotation(ctx, req.Storage); err != nil {
		return err
	}
	if !b.writeSafe() {
		return nil
	}
	if err := b.endBackfillsOfANewMount(ctx, req.Storage); err != nil {
		b.logger.Warn("could not end the index backfills of a new mount; the periodic function walks the records instead", "error", err)
	}
	// The outbox starts even if the signing key could not be made now (the
	// periodic signing tick makes it): this initialization may run under a
	// request that was cancelled, and deliveries must not wait for the
	// next restart.
	err := b.signing.Ensure(ctx, req.Storage)
	b.startOutbox(b.storage)
	return err
}
