package backend

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// withRotationLimits bounds each rotation tick by l instead of
// tickBudget/tickMaxKeys.
func withRotationLimits(l scheduler.Limits) backendOption {
	return func(o *backendOptions) { o.rotationLimits = l }
}

// withPurgeLimits bounds each purge pass by l instead of
// purgeTickBudget/purgeTickMaxKeys.
func withPurgeLimits(l scheduler.Limits) backendOption {
	return func(o *backendOptions) { o.purgeLimits = l }
}

// withStopwatch makes both runners measure their budgets with now.
func withStopwatch(now func() time.Time) backendOption {
	return func(o *backendOptions) { o.stopwatch = now }
}

// withAdoption makes the rotation engine ask seen when a version was last
// verified instead of what verify recorded.
func withAdoption(seen func(k *record.Key, version int) time.Time) backendOption {
	return func(o *backendOptions) { o.adoption = seen }
}

// steppingStopwatch is a stopwatch a test moves: every reading is step
// later than the one before, so with step at least a budget a pass finds
// its budget used up at its first check.
type steppingStopwatch struct {
	now  time.Time
	step time.Duration
}

func (s *steppingStopwatch) read() time.Time {
	t := s.now
	s.now = s.now.Add(s.step)
	return t
}

// withGovernance sizes the governance sweep's and retention's batches.
func withGovernance(g governance.Options) backendOption {
	return func(o *backendOptions) { o.governance = g }
}

// withWebhookSender makes the outbox deliver through send instead of HTTP.
func withWebhookSender(send outbox.SendFunc) backendOption {
	return func(o *backendOptions) { o.webhookSend = send }
}

// withRetentionBatch bounds each retention pass of one kind to n records.
func withRetentionBatch(n int) backendOption {
	return func(o *backendOptions) { o.retentionBatch = n }
}
