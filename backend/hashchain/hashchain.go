package hashchain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Genesis is the "previous hash" of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Hash returns the hex SHA-256 over seq, the previous hash and body. The
// sequence number is bound in so entries cannot be renumbered.
func Hash(seq uint64, prev string, body []byte) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	h.Write(n[:])
	h.Write([]byte(prev))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Link is one stored entry as the verifier sees it.
type Link struct {
	Seq  uint64
	Prev string
	Hash string
	Body []byte
}

// Result reports the outcome of a verification.
type Result struct {
	Valid   bool
	Entries uint64
	Head    string
	// BrokenAt is the sequence number of the first entry that does not verify.
	BrokenAt uint64
	Reason   string
}

// Verifier checks a chain one link at a time, so callers can stream entries
// from storage instead of loading the whole log.
type Verifier struct {
	next uint64
	prev string
	res  Result
}

// NewVerifier starts a verification at sequence number 1.
func NewVerifier() *Verifier {
	return &Verifier{next: 1, prev: Genesis, res: Result{Valid: true, Head: Genesis}}
}

// ResumeVerifier continues a verification at entry next, whose previous
// entry has hash prev: a caller that verified the entries before (or
// archived them) checks only what follows.
func ResumeVerifier(next uint64, prev string) *Verifier {
	return &Verifier{next: next, prev: prev, res: Result{Valid: true, Head: prev}}
}

// Fail records that entry seq could not be checked at all (missing or
// unreadable), which breaks the chain there.
func (v *Verifier) Fail(seq uint64, reason string) {
	if v.res.Valid {
		v.res.Valid = false
		v.res.BrokenAt = seq
		v.res.Reason = reason
	}
}

// Add checks the next link. After the first failure further links are ignored.
func (v *Verifier) Add(l Link) {
	if !v.res.Valid {
		return
	}
	fail := func(reason string) {
		v.res.Valid = false
		v.res.BrokenAt = l.Seq
		v.res.Reason = reason
	}
	switch {
	case l.Seq != v.next:
		fail(fmt.Sprintf("expected entry %d, found %d (entry missing or reordered)", v.next, l.Seq))
	case subtle.ConstantTimeCompare([]byte(l.Prev), []byte(v.prev)) != 1:
		fail(fmt.Sprintf("entry %d does not link to entry %d", l.Seq, l.Seq-1))
	case subtle.ConstantTimeCompare([]byte(l.Hash), []byte(Hash(l.Seq, l.Prev, l.Body))) != 1:
		fail(fmt.Sprintf("entry %d content does not match its hash", l.Seq))
	default:
		v.prev = l.Hash
		v.next++
		v.res.Entries++
		v.res.Head = l.Hash
	}
}

// Result is the outcome so far, before the head is compared.
func (v *Verifier) Result() Result { return v.res }

// Finish checks the chain against the head recorded separately (the head
// record catches truncation of the newest entries) and returns the result.
func (v *Verifier) Finish(headSeq uint64, headHash string) Result {
	return v.FinishAt(0, headSeq, headHash)
}

// FinishAt is Finish for a verification that resumed after entry from.
func (v *Verifier) FinishAt(from, headSeq uint64, headHash string) Result {
	if v.res.Valid && (headSeq != from+v.res.Entries || subtle.ConstantTimeCompare([]byte(headHash), []byte(v.res.Head)) != 1) {
		v.res.Valid = false
		v.res.BrokenAt = from + v.res.Entries + 1
		v.res.Reason = fmt.Sprintf("log head records %d entries but the chain verifies %d (entries removed or head altered)", headSeq, from+v.res.Entries)
	}
	return v.res
}
