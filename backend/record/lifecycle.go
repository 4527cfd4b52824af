package record

import (
	"fmt"
	"time"
)

// Pure state transitions of a key's versions. They change only the Key in
// memory; callers persist it with the backend's commitKey while holding
// the key's lock.

// Activate makes nv the active version. The old active version becomes
// previous, accepted until now+grace; a version that was previous before is
// retired (at most two versions are ever accepted at once). It returns the
// versions it retired, which the caller logs in the same commit.
func (k *Key) Activate(nv *KeyVersion, now time.Time, grace time.Duration) []Retirement {
	var out []Retirement
	for _, v := range k.Versions {
		switch v.State {
		case StatePrevious:
			v.Retire(now)
			out = append(out, Retirement{Version: v.Version, Reason: RetiredEarly})
		case StateActive:
			if v != nv {
				v.State = StatePrevious
				v.GraceEndsAt = now.Add(grace)
				if grace <= 0 {
					v.Retire(now)
					out = append(out, Retirement{Version: v.Version, Reason: RetiredNoGrace})
				}
			}
		}
	}
	nv.State = StateActive
	nv.ActivatedAt = now
	nv.GraceEndsAt = time.Time{}
	k.LastRotatedAt = now
	return out
}

// Retirement is a version retired by a state transition, with why.
type Retirement struct {
	Version int
	Reason  string
}

// Reasons logged with key.retired.
const (
	RetiredGraceEnded = "grace period ended"
	RetiredEarly      = "replaced again before its grace period ended"
	RetiredNoGrace    = "replaced with no grace period"
	RetiredExpired    = "key reached its hard expiry"
)

// Retire ends a version for good; a retired secret is never needed again,
// so its plaintext (kept for retrievable keys) is dropped too.
func (v *KeyVersion) Retire(now time.Time) {
	v.State = StateRetired
	v.RetiredAt = now
	v.Secret = ""
}

// Stage adds nv as the pending version.
func (k *Key) Stage(nv *KeyVersion) error {
	if p := k.VersionByState(StatePending); p != nil {
		return fmt.Errorf("version %d is already pending; promote it or revoke it before staging another", p.Version)
	}
	nv.State = StatePending
	k.Versions = append(k.Versions, nv)
	return nil
}

// Promote makes the pending version active.
func (k *Key) Promote(now time.Time, grace time.Duration) (*KeyVersion, []Retirement, error) {
	p := k.VersionByState(StatePending)
	if p == nil {
		return nil, nil, fmt.Errorf("key has no pending version to promote; stage one with rotate stage=true")
	}
	return p, k.Activate(p, now, grace), nil
}

// Rollback reactivates the previous version while it is still accepted; the
// version rolled back from becomes previous for the same grace, so a client
// that already adopted it is not cut off.
func (k *Key) Rollback(now time.Time, grace time.Duration) (*KeyVersion, []Retirement, error) {
	prev := k.VersionByState(StatePrevious)
	if prev == nil {
		return nil, nil, fmt.Errorf("key has no previous version to roll back to (it is retired, revoked or was never rotated)")
	}
	if !now.Before(prev.GraceEndsAt) {
		return nil, nil, fmt.Errorf("previous version %d is past its grace period and can no longer be reactivated", prev.Version)
	}
	cur := k.Current()
	prev.State = StateActive
	prev.ActivatedAt = now
	prev.GraceEndsAt = time.Time{}
	var out []Retirement
	if cur != nil {
		cur.State = StatePrevious
		cur.GraceEndsAt = now.Add(grace)
		if grace <= 0 {
			cur.Retire(now)
			out = append(out, Retirement{Version: cur.Version, Reason: RetiredNoGrace})
		}
	}
	return prev, out, nil
}

// RevokeVersion revokes one version. Revoked is final.
func (k *Key) RevokeVersion(v *KeyVersion, now time.Time, reason string, by Actor) bool {
	if v.State == StateRevoked {
		return false
	}
	v.State = StateRevoked
	v.RevokedAt = now
	v.RevokeReason = reason
	v.RevokedBy = &by
	v.Secret = ""
	return true
}

// RevokeAll revokes the key and every version that is not already retired
// or revoked; it returns the versions it revoked.
func (k *Key) RevokeAll(now time.Time, reason string, by Actor) []int {
	var out []int
	for _, v := range k.Versions {
		if v.State == StateRetired {
			v.Secret = ""
			continue
		}
		if k.RevokeVersion(v, now, reason, by) {
			out = append(out, v.Version)
		}
	}
	k.Revoked = true
	k.RevokedAt = now
	k.RevokeReason = reason
	k.NextRotationAt = time.Time{}
	return out
}

// RetireExpiredGrace retires previous versions whose grace ended.
func (k *Key) RetireExpiredGrace(now time.Time) []Retirement {
	var out []Retirement
	for _, v := range k.Versions {
		if v.State == StatePrevious && !now.Before(v.GraceEndsAt) {
			v.Retire(now)
			out = append(out, Retirement{Version: v.Version, Reason: RetiredGraceEnded})
		}
	}
	return out
}

// StopRetrieval makes k a key that cannot be read back: no version keeps its
// plaintext from now on (its role no longer allows it).
func (k *Key) StopRetrieval() {
	k.Retrievable = false
	for _, v := range k.Versions {
		v.Secret = ""
	}
}

// MaxKeptVersions bounds a key record's size: older retired or revoked
// versions are dropped from it (and from the index) beyond this many.
const MaxKeptVersions = 10

// MaxTrimmedRevocations bounds the revoked versions a key record remembers
// after trimming them; older ones are only in the lifecycle log. Versions
// are revoked by deliberate acts (incidents), so this is rarely reached.
const MaxTrimmedRevocations = 100

// TrimVersions drops the oldest retired/revoked versions beyond the bound
// (retired ones first: a revocation is what an auditor looks for) and
// returns their HMACs so the caller can delete their index entries. A
// dropped revoked version is remembered in TrimmedRevocations.
func (k *Key) TrimVersions() []string {
	var dropped []string
	for len(k.Versions) > MaxKeptVersions {
		idx := k.OldestVersionIn(StateRetired)
		if idx < 0 {
			idx = k.OldestVersionIn(StateRevoked)
		}
		if idx < 0 {
			break
		}
		v := k.Versions[idx]
		if v.State == StateRevoked {
			k.TrimmedRevocations = append(k.TrimmedRevocations, RevokedVersion{
				Version: v.Version, RevokedAt: v.RevokedAt, Reason: v.RevokeReason, RevokedBy: v.RevokedBy,
			})
			if n := len(k.TrimmedRevocations); n > MaxTrimmedRevocations {
				k.TrimmedRevocations = append([]RevokedVersion(nil), k.TrimmedRevocations[n-MaxTrimmedRevocations:]...)
			}
		}
		dropped = append(dropped, v.HMAC)
		k.Versions = append(k.Versions[:idx], k.Versions[idx+1:]...)
	}
	return dropped
}

// OldestVersionIn returns the index of the oldest version in state, or -1.
func (k *Key) OldestVersionIn(state string) int {
	for i, v := range k.Versions {
		if v.State == state {
			return i
		}
	}
	return -1
}
