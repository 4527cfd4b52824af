package backend

import (
	"time"
)

// Pure decisions of the rotation engine: when a key next needs attention and
// what to do with a previous version whose grace is ending.

// adoptionLookahead is how long before a previous version's grace ends the
// engine decides whether retirement must wait for adoption. Deciding early
// (the tick runs about once a minute) keeps a client that has not switched
// yet from being rejected between the end of grace and the next tick.
const adoptionLookahead = 2 * time.Minute

// minAdoptionStep is the smallest extension of a deferred grace period, so a
// short grace does not make the engine re-check every few seconds.
const minAdoptionStep = time.Minute

// managedKey reports whether the rotation engine looks after k: leased keys
// live and die with their Vault lease, revoked keys are final.
func managedKey(k *Key) bool {
	return k != nil && !k.Leased && !k.Revoked
}

// autoRotates reports whether the engine may rotate k on its schedule. A
// key that is not retrievable may not: nobody could read the new secret, so
// the client would keep the old one until its grace ended and then hold no
// accepted key at all (SPEC §4). Such a key is rotated by its owner with
// keys/<client>/<name>/rotate, which returns the new secret once; until
// then it is reported overdue (governance sweep, metrics).
func autoRotates(k *Key) bool {
	return k.Retrievable
}

// expiryDone reports whether a key past its hard expiry was already handled
// (expiry clears the next rotation and retires the previous version).
func expiryDone(k *Key, now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) &&
		k.NextRotationAt.IsZero() && k.versionByState(statePrevious) == nil
}

// lookahead is how early before end the adoption decision for previous
// version p is taken: never more than half the grace that p was given, so
// the decision is not taken right after the rotation itself.
func lookahead(k *Key, p *KeyVersion) time.Duration {
	la := adoptionLookahead
	if a := k.current(); a != nil && !a.ActivatedAt.IsZero() {
		if half := p.GraceEndsAt.Sub(a.ActivatedAt) / 2; half < la {
			la = half
		}
	}
	if la < 0 {
		la = 0
	}
	return la
}

// dueAt is when k next needs the engine (zero: never): the earliest of its
// next rotation, the adoption decision or end of a previous version's grace,
// and its hard expiry.
func dueAt(k *Key, now time.Time) time.Time {
	if !managedKey(k) || expiryDone(k, now) {
		return time.Time{}
	}
	var due time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	consider(k.ExpiresAt)
	if now.Before(k.NextRotationAt) || (autoRotates(k) && k.versionByState(statePrevious) == nil) {
		// A past rotation time needs no tick of its own when the engine
		// may not rotate the key (the sweep reports it overdue) or when a
		// previous version's grace holds the rotation back (the end of
		// that grace, considered below, brings the key back).
		consider(k.NextRotationAt)
	}
	for _, v := range k.Versions {
		if v.State != statePrevious {
			continue
		}
		if early := v.GraceEndsAt.Add(-lookahead(k, v)); now.Before(early) {
			consider(early)
		} else {
			consider(v.GraceEndsAt)
		}
	}
	return due
}

// graceAction is what happens to a previous version at a tick.
type graceAction int

const (
	graceKeep   graceAction = iota // not yet time
	graceRetire                    // grace over: retire it
	graceExtend                    // new version not adopted yet: wait longer
)

// graceDecision is the outcome of decideGrace.
type graceDecision struct {
	action graceAction
	newEnd time.Time // for graceExtend
	first  bool      // first extension of this version: raise the alert
}

// adoptionInput is what decideGrace needs to know about the versions.
type adoptionInput struct {
	grace, maxGrace time.Duration
	// activeSeen / previousSeen: last successful verify of the active and
	// the previous version (zero: never).
	activeSeen, previousSeen time.Time
}

// decideGrace decides the fate of previous version p of k at now.
// Retirement waits (up to activation + max_grace_period) while the active
// version was never verified but p was verified since the rotation: the
// client evidently has not switched yet.
//
// The decision is taken at the latest by the tick that would retire p,
// whatever the grace: with a grace shorter than the tick's period (about a
// minute) no tick may fall inside the lookahead window, and deciding only
// there would retire a version still in sole use without a word. A tick
// inside the window decides early, so a long grace never lapses first.
// When the deciding tick comes after the grace ended, verify has taken the
// same decision meanwhile (retirementPending), so p was not refused in
// between; the condition cannot turn true again once it was false (p is
// only seen by verifies it accepted), so nothing refused for any other
// reason is brought back.
func decideGrace(k *Key, p *KeyVersion, now time.Time, in adoptionInput) graceDecision {
	end := p.GraceEndsAt
	if now.Before(end.Add(-lookahead(k, p))) {
		return graceDecision{action: graceKeep}
	}
	active := k.current()
	if active != nil && in.activeSeen.IsZero() && !in.previousSeen.IsZero() &&
		!in.previousSeen.Before(active.ActivatedAt) {
		limit := active.ActivatedAt.Add(in.maxGrace)
		from := end
		if now.After(from) {
			from = now
		}
		if from.Before(limit) {
			step := in.grace
			if step < minAdoptionStep {
				step = minAdoptionStep
			}
			newEnd := from.Add(step)
			if newEnd.After(limit) {
				newEnd = limit
			}
			// Not extended before: its grace is still what rotation gave it.
			first := !end.After(active.ActivatedAt.Add(in.grace))
			return graceDecision{action: graceExtend, newEnd: newEnd, first: first}
		}
	}
	if !now.Before(end) {
		return graceDecision{action: graceRetire}
	}
	return graceDecision{action: graceKeep}
}
