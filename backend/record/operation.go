package record

import (
	"slices"
	"time"
)

// Bulk operation actions (SPEC §10): what an operation does to each key
// its selector matches.
const (
	OperationRevoke  = "revoke"
	OperationRotate  = "rotate"
	OperationLock    = "lock"
	OperationDisable = "disable"
)

// Bulk operation states. An operation is running until its walk reaches
// the last key, is cancelled, or fails for good.
const (
	OperationRunning   = "running"
	OperationCompleted = "completed"
	OperationCancelled = "cancelled"
	OperationFailed    = "failed"
)

// Selector chooses the keys of a bulk operation. Every field set must
// match (AND); All is the explicit "every key" that an empty selector is
// not taken to mean. IssuedBefore is always set when the operation is
// accepted (to the accept time unless earlier), so keys issued after an
// operation was accepted are never its keys.
type Selector struct {
	Client       string    `json:"client,omitempty"`
	Role         string    `json:"role,omitempty"`
	Owner        string    `json:"owner,omitempty"`
	Environment  string    `json:"environment,omitempty"`
	IssuedBefore time.Time `json:"issued_before,omitempty"`
	IssuedAfter  time.Time `json:"issued_after,omitempty"`
	// IssuedBy is an entity id or a display name of the issuer.
	IssuedBy string `json:"issued_by,omitempty"`
	Scope    string `json:"scope,omitempty"`
	All      bool   `json:"all,omitempty"`
}

// Empty reports whether no field narrows the selector.
func (s Selector) Empty() bool {
	return s.Client == "" && s.Role == "" && s.Owner == "" && s.Environment == "" &&
		s.IssuedBefore.IsZero() && s.IssuedAfter.IsZero() && s.IssuedBy == "" && s.Scope == ""
}

// Matches reports whether k is selected. Revoked keys never match: no
// action applies to them, and a revoke must not count them twice.
func (s Selector) Matches(k *Key) bool {
	switch {
	case k == nil || k.Revoked:
		return false
	case s.Client != "" && k.Client != s.Client,
		s.Role != "" && k.Role != s.Role,
		s.Owner != "" && k.Owner != s.Owner,
		s.Environment != "" && k.Environment != s.Environment,
		!s.IssuedBefore.IsZero() && k.CreatedAt.After(s.IssuedBefore),
		!s.IssuedAfter.IsZero() && k.CreatedAt.Before(s.IssuedAfter),
		s.IssuedBy != "" && k.IssuedBy.EntityID != s.IssuedBy && k.IssuedBy.DisplayName != s.IssuedBy,
		s.Scope != "" && !slices.Contains(k.Scopes, s.Scope):
		return false
	}
	return true
}

// Operation is a bulk operation (storage "operations/<id>"): what it does,
// to which keys, and how far its background walk has come.
type Operation struct {
	ID        string    `json:"id"`
	Action    string    `json:"action"`
	Selector  Selector  `json:"selector"`
	Reason    string    `json:"reason"`
	State     string    `json:"state"`
	CreatedBy Actor     `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	EndedAt   time.Time `json:"ended_at,omitempty"`

	// Cursor is the walk's position ("<client>/<name>" of the last key
	// visited; "" before the first step and after the last).
	Cursor string `json:"cursor,omitempty"`
	// Scanned counts key records visited, Matched the ones selected, Done
	// the ones the action was applied to (or found applied by this
	// operation), Skipped the matched keys the action does not apply to
	// (a leased key cannot rotate), Failed the ones it failed on.
	Scanned int `json:"scanned"`
	Matched int `json:"matched"`
	Done    int `json:"done"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	// Total is how many keys the selector matched when a separate counting
	// walk, ahead of the work, read them (CountCursor is its position);
	// Counted says that walk reached the end, so Total is the whole. It
	// makes remaining known long before the work reaches the last key.
	Total       int    `json:"total"`
	CountCursor string `json:"count_cursor,omitempty"`
	Counted     bool   `json:"counted"`
	// LastError is the last per-key failure (no secret: a key's path and
	// the error text of storage or validation).
	LastError string `json:"last_error,omitempty"`
	// LockedClient is the last client a lock operation locked: keys are
	// walked in client order, so each client is locked once.
	LockedClient string `json:"locked_client,omitempty"`
}

// Remaining is how many matched keys the work has not reached yet: exact
// once counted (a key changed by someone else meanwhile may leave it above
// zero until the end), a lower bound while counting, zero once ended.
func (o *Operation) Remaining() int {
	if o.Ended() {
		return 0
	}
	return max(0, o.Total-o.Done-o.Skipped-o.Failed)
}

// Ended reports whether the operation will do no more.
func (o *Operation) Ended() bool { return o.State != OperationRunning }
