package eventlog

// Event types: the value of Event.Type, and the only types the engine
// appends. They are stored in every entry and read back by metrics and
// operators' tooling, so a type is added, never renamed.
const (
	// ConfigUpdated: the mount's configuration was written or reset.
	ConfigUpdated = "config.updated"

	// ClientWritten: a client was created or updated.
	ClientWritten = "client.written"
	// ClientLocked: a client was locked; its keys stop verifying.
	ClientLocked = "client.locked"
	// ClientUnlocked: a locked client was made active again.
	ClientUnlocked = "client.unlocked"
	// ClientDeleted: a client was deprovisioned.
	ClientDeleted = "client.deleted"

	// RoleWritten: a role was created or updated.
	RoleWritten = "role.written"
	// RoleDeleted: a role was deleted.
	RoleDeleted = "role.deleted"

	// KeyIssued: a key was issued (its first version).
	KeyIssued = "key.issued"
	// KeyRotated: a new version became current, by request or schedule.
	KeyRotated = "key.rotated"
	// KeyStaged: a new version was staged, not yet current.
	KeyStaged = "key.staged"
	// KeyPromoted: the staged version became current.
	KeyPromoted = "key.promoted"
	// KeyRolledBack: the previous version became current again.
	KeyRolledBack = "key.rolled_back"
	// KeyRetired: a previous version stopped verifying (end of its
	// grace, replaced again, or the key's expiry; details.reason says
	// which).
	KeyRetired = "key.retired"
	// KeyRetirementDeferred: the end of a previous version's grace was
	// pushed back because the new version is not yet in use while the
	// previous one still is.
	KeyRetirementDeferred = "key.retirement_deferred"
	// KeyRevoked: one version or the whole key was revoked.
	KeyRevoked = "key.revoked"
	// KeyExpired: a key reached its expiry.
	KeyExpired = "key.expired"
	// KeyUpdated: a key's purpose, metadata, scopes or expiry changed
	// (details: the changed fields' before.<field> and after.<field>).
	KeyUpdated = "key.updated"
	// KeyDisabled: a key was disabled; it stops verifying until enabled.
	KeyDisabled = "key.disabled"
	// KeyEnabled: a disabled key was enabled again.
	KeyEnabled = "key.enabled"
	// KeyReissued: a new key was issued under the name of a revoked one
	// (details.predecessor_key_id names the revoked key).
	KeyReissued = "key.reissued"
	// KeyPlaintextDropped: the stored plaintexts of a key were dropped
	// after its role stopped allowing retrieval.
	KeyPlaintextDropped = "key.plaintext_dropped"
	// KeysPurged: one batch of dead leased keys was purged.
	KeysPurged = "keys.purged"

	// KeyRotationDueSoon: a key its owner must rotate by hand is due
	// within one of the mount's rotation_notice_lead_times (details.lead).
	KeyRotationDueSoon = "key.rotation_due_soon"
	// KeyExpiring: a key expires within its role's expiry_notice.
	KeyExpiring = "key.expiring"

	// RequestCreated: an approval request was filed.
	RequestCreated = "request.created"
	// RequestApproved: an approval request was approved.
	RequestApproved = "request.approved"
	// RequestDenied: an approval request was denied.
	RequestDenied = "request.denied"
	// RequestUsed: an approved request was consumed by the change it
	// approved.
	RequestUsed = "request.used"

	// LeakReported: a leak of a key was reported.
	LeakReported = "leak.reported"

	// AlertRaised: an alert was raised; the entry repeats the alert.
	AlertRaised = "alert.raised"
	// AlertAcknowledged: an alert was acknowledged.
	AlertAcknowledged = "alert.acknowledged"
	// AlertsPruned: one batch of alerts was deleted after their retention.
	AlertsPruned = "alerts.pruned"

	// ResponseExecuted: an automated response policy acted on an alert
	// (details: alert_id, policy, action, outcome); the actor is system.
	ResponseExecuted = "response.executed"
	// ResponseSkipped: an automated response policy selected an alert but
	// did not act (details: alert_id, policy, action, reason).
	ResponseSkipped = "response.skipped"

	// TokenIssued: a key was exchanged for a short-lived signed token.
	TokenIssued = "token.issued"
	// SigningKeyRotated: the mount's token signing key was rotated.
	SigningKeyRotated = "signing_key.rotated"
	// SigningKeyPublished: a new signing key was published before use.
	SigningKeyPublished = "signing_key.published"
	// SigningKeyRevoked: published signing keys were withdrawn.
	SigningKeyRevoked = "signing_key.revoked"

	// EndpointWritten: a webhook endpoint was created or updated.
	EndpointWritten = "endpoint.written"
	// EndpointDeleted: a webhook endpoint was deleted.
	EndpointDeleted = "endpoint.deleted"
	// EndpointSecretRotated: an endpoint's signing secret was replaced.
	EndpointSecretRotated = "endpoint.secret_rotated"
	// EndpointReplayed: past events were queued for an endpoint again.
	EndpointReplayed = "endpoint.replayed"
	// NotificationsConfigUpdated: notifications/config was written.
	NotificationsConfigUpdated = "notifications.config_updated"

	// ResponsePolicyWritten: an automated response policy was created or updated.
	ResponsePolicyWritten = "response_policy.written"
	// ResponsePolicyDeleted: an automated response policy was deleted.
	ResponsePolicyDeleted = "response_policy.deleted"
	// ClientRestricted: a temporary restriction of a client was applied or
	// changed (details: scopes, bound_cidrs, rate_limit, expires_at, reason).
	ClientRestricted = "client.restricted"
	// ClientRestrictionLifted: a client's restriction ended, lifted early
	// by an operator or at its expiry by the system (details.how).
	ClientRestrictionLifted = "client.restriction_lifted"
	// OperationStarted: a bulk operation was accepted (details:
	// operation_id, action, reason, selector). Each key it changes has its
	// own entry (key.revoked, key.rotated, client.locked) whose details
	// carry the operation_id.
	OperationStarted = "operation.started"
	// OperationFinished: a bulk operation reached its last key (details:
	// operation_id, state completed or failed, matched, done, failed).
	OperationFinished = "operation.finished"
	// OperationCancelled: a bulk operation was cancelled; keys not reached
	// are left as they were (details: operation_id, reason, done).
	OperationCancelled = "operation.cancelled"
	// OperationsPruned: ended operations past their retention were
	// deleted (details: count, operation_ids, retention).
	OperationsPruned = "operations.pruned"
	// LogConfigUpdated: log/config was written (details: the settings).
	LogConfigUpdated = "log.config_updated"
	// LogArchived: entries up to a sequence number were archived by an
	// operator and are removed from storage (details: through,
	// through_hash, entries, retention).
	LogArchived = "log.archived"
	// RequestsPruned: approval requests past approval_request_retention
	// were deleted (details: count, approval_ids, approval_request_retention).
	RequestsPruned = "requests.pruned"
	// ArchivedKeysPruned: archived records of revoked, re-issued keys
	// past archived_key_retention were deleted with their index entries
	// (details: count, key_ids, archived_key_retention).
	ArchivedKeysPruned = "archived_keys.pruned"
)
