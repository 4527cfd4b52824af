package record

import (
	"time"
)

// Pure decisions of the rotation engine: when a key next needs attention and
// what to do with a previous version whose grace is ending.

// AdoptionLookahead is how long before a previous version's grace ends the
// engine decides whether retirement must wait for adoption. Deciding early
// (the tick runs about once a minute) keeps a client that has not switched
// yet from being rejected between the end of grace and the next tick.
const AdoptionLookahead = 2 * time.Minute

// MinAdoptionStep is the smallest extension of a deferred grace period, so a
// short grace does not make the engine re-check every few seconds.
const MinAdoptionStep = time.Minute

// ManagedKey reports whether the rotation engine looks after k: leased keys
// live and die with their Vault lease, revoked keys are final.
func ManagedKey(k *Key) bool {
	return k != nil && !k.Leased && !k.Revoked
}

// AutoRotates reports whether the engine may rotate k on its schedule. A
// key that is not retrievable may not: nobody could read the new secret, so
// the client would keep the old one until its grace ended and then hold no
// accepted key at all (SPEC §4). Such a key is rotated by its owner with
// keys/<client>/<name>/rotate, which returns the new secret once; until
// then it is reported overdue (governance sweep, metrics).
func AutoRotates(k *Key) bool {
	return k.Retrievable
}

// ExpiryDone reports whether a key past its hard expiry was already handled
// (expiry clears the next rotation and retires the previous version).
func ExpiryDone(k *Key, now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) &&
		k.NextRotationAt.IsZero() && k.VersionByState(StatePrevious) == nil
}

// Lookahead is how early before end the adoption decision for previous
// version p is taken: never more than half the grace that p was given, so
// the decision is not taken right after the rotation itself.
func Lookahead(k *Key, p *KeyVersion) time.Duration {
	la := AdoptionLookahead
	if a := k.Current(); a != nil && !a.ActivatedAt.IsZero() {
		if half := p.GraceEndsAt.Sub(a.ActivatedAt) / 2; half < la {
			la = half
		}
	}
	if la < 0 {
		la = 0
	}
	return la
}

// DueAt is when k next needs the engine (zero: never): the earliest of its
// next rotation, the adoption decision or end of a previous version's grace,
// and its hard expiry.
func DueAt(k *Key, now time.Time) time.Time {
	if !ManagedKey(k) || ExpiryDone(k, now) {
		return time.Time{}
	}
	var due time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	consider(k.ExpiresAt)
	if now.Before(k.NextRotationAt) || (AutoRotates(k) && k.VersionByState(StatePrevious) == nil) {
		// A past rotation time needs no tick of its own when the engine
		// may not rotate the key (the sweep reports it overdue) or when a
		// previous version's grace holds the rotation back (the end of
		// that grace, considered below, brings the key back).
		consider(k.NextRotationAt)
	}
	for _, v := range k.Versions {
		if v.State != StatePrevious {
			continue
		}
		if early := v.GraceEndsAt.Add(-Lookahead(k, v)); now.Before(early) {
			consider(early)
		} else {
			consider(v.GraceEndsAt)
		}
	}
	return due
}

// GraceAction is what happens to a previous version at a tick.
type GraceAction int

const (
	GraceKeep   GraceAction = iota // not yet time
	GraceRetire                    // grace over: retire it
	GraceExtend                    // new version not adopted yet: wait longer
)

// GraceDecision is the outcome of DecideGrace.
type GraceDecision struct {
	Action GraceAction
	NewEnd time.Time // for GraceExtend
	First  bool      // first extension of this version: raise the alert
}

// AdoptionInput is what DecideGrace needs to know about the versions.
type AdoptionInput struct {
	Grace, MaxGrace time.Duration
	// ActiveSeen / PreviousSeen: last successful verify of the active and
	// the previous version (zero: never).
	ActiveSeen, PreviousSeen time.Time
}

// DecideGrace decides the fate of previous version p of k at now.
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
// same decision meanwhile (the backend's retirementPending), so p was not
// refused in between; the condition cannot turn true again once it was
// false (p is only seen by verifies it accepted), so nothing refused for
// any other reason is brought back.
func DecideGrace(k *Key, p *KeyVersion, now time.Time, in AdoptionInput) GraceDecision {
	end := p.GraceEndsAt
	if now.Before(end.Add(-Lookahead(k, p))) {
		return GraceDecision{Action: GraceKeep}
	}
	active := k.Current()
	if active != nil && in.ActiveSeen.IsZero() && !in.PreviousSeen.IsZero() &&
		!in.PreviousSeen.Before(active.ActivatedAt) {
		limit := active.ActivatedAt.Add(in.MaxGrace)
		from := end
		if now.After(from) {
			from = now
		}
		if from.Before(limit) {
			step := in.Grace
			if step < MinAdoptionStep {
				step = MinAdoptionStep
			}
			newEnd := from.Add(step)
			if newEnd.After(limit) {
				newEnd = limit
			}
			// Not extended before: its grace is still what rotation gave it.
			first := !end.After(active.ActivatedAt.Add(in.Grace))
			return GraceDecision{Action: GraceExtend, NewEnd: newEnd, First: first}
		}
	}
	if !now.Before(end) {
		return GraceDecision{Action: GraceRetire}
	}
	return GraceDecision{Action: GraceKeep}
}

// RetirementDecisionBound is how long past the end of its grace a previous
// version may wait for the tick that decides its retirement: a tick runs
// about once a minute, and a late one a little later.
const RetirementDecisionBound = 2 * time.Minute
