package backend

import (
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Pure state transitions of a key's versions. They change only the Key in
// memory; callers persist it with commitKey while holding the key's lock.

// activate makes nv the active version. The old active version becomes
// previous, accepted until now+grace; a version that was previous before is
// retired (at most two versions are ever accepted at once). It returns the
// versions it retired, which the caller logs in the same commit.
func (k *Key) activate(nv *KeyVersion, now time.Time, grace time.Duration) []retirement {
	var out []retirement
	for _, v := range k.Versions {
		switch v.State {
		case statePrevious:
			v.retire(now)
			out = append(out, retirement{version: v.Version, reason: retiredEarly})
		case stateActive:
			if v != nv {
				v.State = statePrevious
				v.GraceEndsAt = now.Add(grace)
				if grace <= 0 {
					v.retire(now)
					out = append(out, retirement{version: v.Version, reason: retiredNoGrace})
				}
			}
		}
	}
	nv.State = stateActive
	nv.ActivatedAt = now
	nv.GraceEndsAt = time.Time{}
	k.LastRotatedAt = now
	return out
}

// retirement is a version retired by a state transition, with why.
type retirement struct {
	version int
	reason  string
}

// Reasons logged with key.retired.
const (
	retiredGraceEnded = "grace period ended"
	retiredEarly      = "replaced again before its grace period ended"
	retiredNoGrace    = "replaced with no grace period"
	retiredExpired    = "key reached its hard expiry"
)

// retire ends a version for good; a retired secret is never needed again,
// so its plaintext (kept for retrievable keys) is dropped too.
func (v *KeyVersion) retire(now time.Time) {
	v.State = stateRetired
	v.RetiredAt = now
	v.Secret = ""
}

// stage adds nv as the pending version.
func (k *Key) stage(nv *KeyVersion) error {
	if p := k.versionByState(statePending); p != nil {
		return fmt.Errorf("version %d is already pending; promote it or revoke it before staging another", p.Version)
	}
	nv.State = statePending
	k.Versions = append(k.Versions, nv)
	return nil
}

// promote makes the pending version active.
func (k *Key) promote(now time.Time, grace time.Duration) (*KeyVersion, []retirement, error) {
	p := k.versionByState(statePending)
	if p == nil {
		return nil, nil, fmt.Errorf("key has no pending version to promote; stage one with rotate stage=true")
	}
	return p, k.activate(p, now, grace), nil
}

// rollback reactivates the previous version while it is still accepted; the
// version rolled back from becomes previous for the same grace, so a client
// that already adopted it is not cut off.
func (k *Key) rollback(now time.Time, grace time.Duration) (*KeyVersion, []retirement, error) {
	prev := k.versionByState(statePrevious)
	if prev == nil {
		return nil, nil, fmt.Errorf("key has no previous version to roll back to (it is retired, revoked or was never rotated)")
	}
	if !now.Before(prev.GraceEndsAt) {
		return nil, nil, fmt.Errorf("previous version %d is past its grace period and can no longer be reactivated", prev.Version)
	}
	cur := k.current()
	prev.State = stateActive
	prev.ActivatedAt = now
	prev.GraceEndsAt = time.Time{}
	var out []retirement
	if cur != nil {
		cur.State = statePrevious
		cur.GraceEndsAt = now.Add(grace)
		if grace <= 0 {
			cur.retire(now)
			out = append(out, retirement{version: cur.Version, reason: retiredNoGrace})
		}
	}
	return prev, out, nil
}

// revokeVersion revokes one version. Revoked is final.
func (k *Key) revokeVersion(v *KeyVersion, now time.Time, reason string, by Actor) bool {
	if v.State == stateRevoked {
		return false
	}
	v.State = stateRevoked
	v.RevokedAt = now
	v.RevokeReason = reason
	v.RevokedBy = &by
	v.Secret = ""
	return true
}

// revokeAll revokes the key and every version that is not already retired
// or revoked; it returns the versions it revoked.
func (k *Key) revokeAll(now time.Time, reason string, by Actor) []int {
	var out []int
	for _, v := range k.Versions {
		if v.State == stateRetired {
			v.Secret = ""
			continue
		}
		if k.revokeVersion(v, now, reason, by) {
			out = append(out, v.Version)
		}
	}
	k.Revoked = true
	k.RevokedAt = now
	k.RevokeReason = reason
	k.NextRotationAt = time.Time{}
	return out
}

// retireExpiredGrace retires previous versions whose grace ended.
func (k *Key) retireExpiredGrace(now time.Time) []retirement {
	var out []retirement
	for _, v := range k.Versions {
		if v.State == statePrevious && !now.Before(v.GraceEndsAt) {
			v.retire(now)
			out = append(out, retirement{version: v.Version, reason: retiredGraceEnded})
		}
	}
	return out
}

// retiredEvents are the key.retired entries of versions of k retired by one
// change; req is nil for background work.
func retiredEvents(req *logical.Request, k *Key, rs []retirement) []Event {
	out := make([]Event, 0, len(rs))
	for _, r := range rs {
		ev := eventFor(req, eventKeyRetired, k, r.version)
		ev.Details = map[string]string{"reason": r.reason}
		out = append(out, ev)
	}
	return out
}

// stopRetrieval makes k a key that cannot be read back: no version keeps its
// plaintext from now on (its role no longer allows it).
func (k *Key) stopRetrieval() {
	k.Retrievable = false
	for _, v := range k.Versions {
		v.Secret = ""
	}
}

// maxKeptVersions bounds a key record's size: older retired or revoked
// versions are dropped from it (and from the index) beyond this many.
const maxKeptVersions = 10

// maxTrimmedRevocations bounds the revoked versions a key record remembers
// after trimming them; older ones are only in the lifecycle log. Versions
// are revoked by deliberate acts (incidents), so this is rarely reached.
const maxTrimmedRevocations = 100

// trimVersions drops the oldest retired/revoked versions beyond the bound
// (retired ones first: a revocation is what an auditor looks for) and
// returns their HMACs so the caller can delete their index entries. A
// dropped revoked version is remembered in TrimmedRevocations.
func (k *Key) trimVersions() []string {
	var dropped []string
	for len(k.Versions) > maxKeptVersions {
		idx := k.oldestVersionIn(stateRetired)
		if idx < 0 {
			idx = k.oldestVersionIn(stateRevoked)
		}
		if idx < 0 {
			break
		}
		v := k.Versions[idx]
		if v.State == stateRevoked {
			k.TrimmedRevocations = append(k.TrimmedRevocations, revokedVersion{
				Version: v.Version, RevokedAt: v.RevokedAt, Reason: v.RevokeReason, RevokedBy: v.RevokedBy,
			})
			if n := len(k.TrimmedRevocations); n > maxTrimmedRevocations {
				k.TrimmedRevocations = append([]revokedVersion(nil), k.TrimmedRevocations[n-maxTrimmedRevocations:]...)
			}
		}
		dropped = append(dropped, v.HMAC)
		k.Versions = append(k.Versions[:idx], k.Versions[idx+1:]...)
	}
	return dropped
}

// oldestVersionIn returns the index of the oldest version in state, or -1.
func (k *Key) oldestVersionIn(state string) int {
	for i, v := range k.Versions {
		if v.State == state {
			return i
		}
	}
	return -1
}
