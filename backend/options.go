package backend

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// backendOptions are what newBackend lets its caller choose; the zero
// value is production. Tests set them through backendOption functions.
type backendOptions struct {
	// rotationLimits and purgeLimits bound one pass of each runner
	// (zero: tickBudget/tickMaxKeys, purgeTickBudget/purgeTickMaxKeys).
	rotationLimits, purgeLimits scheduler.Limits
	// stopwatch measures both runners' passes against their budgets
	// (nil: real time).
	stopwatch func() time.Time
	// adoption replaces the usage tracker's VersionLastVerified as the source of when a
	// version was last verified.
	adoption func(k *record.Key, version int) time.Time
	// governance sizes the governance sweep's and retention's batches.
	governance governance.Options
	// retentionBatch bounds the records one retention pass of one kind
	// examines (zero: retentionBatch, retention_index.go).
	retentionBatch int
	// webhookSend replaces the outbox's HTTP sender (nil: real HTTP).
	webhookSend outbox.SendFunc
	// liveKeyMetricsMax replaces liveKeyMetricsMax (zero: the default;
	// negative: a metrics read never counts keys itself).
	liveKeyMetricsMax int
}

// backendOption sets one of the backendOptions.
type backendOption func(*backendOptions)

func collectOptions(opts []backendOption) backendOptions {
	var o backendOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// withLiveKeyMetricsMax lets a test reach, with a few keys, a mount too
// large for a metrics read to count its keys itself (-1: any mount).
func withLiveKeyMetricsMax(n int) backendOption {
	return func(o *backendOptions) { o.liveKeyMetricsMax = n }
}
