package detect

import (
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const (
	// maxTrackedKeys bounds the per-key window counters; they are dropped
	// when the window ends.
	maxTrackedKeys = 10000
	// maxAddrKeys bounds the keys with a learned address set. The sets
	// live across windows, so a plain cap would fill once and then stop
	// learning for good (every key verified later would never get
	// new_address alerts); they are kept in an LRU instead: the key
	// verified least recently gives up its set, and learns afresh
	// (EstablishedAfter successes) when it comes back. A set holds at most
	// maxAddrsPerKey addresses, so one costs at most about 800 bytes
	// (slice, address strings, LRU links) and about 200 with one address:
	// the learned sets stay below about 20 MB, typically about 5 MB.
	maxAddrKeys = 25000
	// maxPendingAlerts bounds the buffer between two drains; further
	// detections are counted as dropped.
	maxPendingAlerts = 1000
	// maxAddrsPerKey bounds a key's learned address set.
	maxAddrsPerKey = 16
	// maxFailedSources bounds the addresses remembered for a guessing burst.
	maxFailedSources = 8
)

// EstablishedAfter is how many successful verifies a key needs before its
// address set counts as established, so that a new address is news.
const EstablishedAfter = 20

// keyWindow counts one key's verify traffic in the current window, and
// the alerts raised for it in this window, by type.
type keyWindow struct {
	verifies int
	alerts   map[string]*burst
}

// addrSet is the set of addresses a key was verified from successfully. A
// slice: at most maxAddrsPerKey entries, smaller than a map and as fast to
// search at that size.
type addrSet struct {
	addrs     []string
	successes int
}

// Detector is the in-memory detection state of one node. Build it with
// New: every field is set there (and by startWindow and takeBuffers, which
// New runs), so no path can meet a half-built detector. Its methods are
// safe for concurrent use.
type Detector struct {
	// mu guards everything below; Observe takes it on every verify, so
	// nothing done under it reads storage or waits.
	mu sync.Mutex

	// newID returns the id of a new alert (see New).
	newID func(time.Time) (string, error)

	// Per window (alert_window), reset by startWindow.
	windowStart time.Time
	perKey      map[string]*keyWindow
	failed      int
	failedBurst *burst
	// failedSrc counts failures by address since the failed_verify_burst
	// alert last handed over (or the window start), so each alert lists
	// the sources of the failures it counts.
	failedSrc map[string]int

	// Across windows.
	addrs *simplelru.LRU[string, *addrSet] // by key_id

	// Buffers, handed over by drain (takeBuffers).
	pending []*record.Alert
	dropped int
	// outcomes counts verify outcomes ("active" or the code) since the
	// last drain.
	outcomes map[string]uint64
	// byClient counts the same outcomes by client label
	// (Thresholds.clientLabel): at most MaxMetricsClients+2 labels.
	byClient map[ClientOutcome]uint64
	// epoch counts drains; see burst.
	epoch uint64
}

// New returns a detector ready to observe. newID gives each detected
// alert its id as it is raised, so that a follow-up can name it before it
// is stored; the id format belongs to whoever stores alerts.
func New(newID func(time.Time) (string, error)) *Detector {
	addrs, err := simplelru.NewLRU[string, *addrSet](maxAddrKeys, nil)
	if err != nil {
		panic("simplelru.NewLRU with a positive size: " + err.Error()) // unreachable
	}
	d := &Detector{newID: newID, addrs: addrs}
	d.startWindow(time.Time{})
	d.takeBuffers()
	return d
}

// Observe records one verify outcome. It runs on verify's hot path, under
// the detector's lock, and touches only the bounded state above.
func (d *Detector) Observe(now time.Time, th Thresholds, in record.VerifyInput, res record.VerifyResult) {
	d.mu.Lock()
	defer d.mu.Unlock() // also if observe panics: the request fails, the detector stays usable
	d.observe(now, th, in, res)
}

// ClientOutcome is a verify outcome counted under a client label.
type ClientOutcome struct{ Client, Outcome string }

// Drain hands over the buffered alerts, the outcome counts (in all and by
// client label) and the number
// of detections dropped since the last drain. The alerts themselves are
// handed over: the detector counts later occurrences into follow-ups,
// never into them. The detector stays fully built and keeps its window
// counters and learned addresses.
func (d *Detector) Drain() (alerts []*record.Alert, outcomes map[string]uint64, byClient map[ClientOutcome]uint64, dropped int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.failedBurst.open(d); a != nil {
		a.Details["sources"] = topSources(d.failedSrc)
		d.failedSrc = map[string]int{}
	}
	return d.takeBuffers()
}

// Requeue puts back drained alerts that could not be stored, for the next
// drain. The buffer's bound holds: what does not fit is counted as dropped.
func (d *Detector) Requeue(alerts []*record.Alert) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range alerts {
		d.enqueue(a)
	}
}

// PeekOutcomes returns a copy of the outcome counts not yet drained.
func (d *Detector) PeekOutcomes() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.outcomes))
	for k, v := range d.outcomes {
		out[k] = v
	}
	return out
}

// PeekClientOutcomes returns a copy of the outcome counts by client label
// not yet drained.
func (d *Detector) PeekClientOutcomes() map[ClientOutcome]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.byClient)
}

// startWindow drops the counters of the window that ended. A zero start
// makes the next observe start a window at its own time.
func (d *Detector) startWindow(now time.Time) {
	d.windowStart = now
	d.perKey = map[string]*keyWindow{}
	d.failed = 0
	d.failedBurst = nil
	d.failedSrc = map[string]int{}
}

// takeBuffers empties the buffers and returns what they held. Alerts in
// the buffer belong to the caller from now on (the epoch moves on, so no
// burst counts into them any more).
func (d *Detector) takeBuffers() (alerts []*record.Alert, outcomes map[string]uint64, byClient map[ClientOutcome]uint64, dropped int) {
	alerts, outcomes, byClient, dropped = d.pending, d.outcomes, d.byClient, d.dropped
	d.pending, d.outcomes, d.byClient, d.dropped = nil, map[string]uint64{}, map[ClientOutcome]uint64{}, 0
	d.epoch++
	return alerts, outcomes, byClient, dropped
}

// buffer queues a for storage and returns the burst that follows it; a
// full buffer drops the detection (counted) and the burst follows nothing.
func (d *Detector) buffer(a *record.Alert) *burst {
	if !d.enqueue(a) {
		return &burst{}
	}
	return &burst{alert: a, id: a.ID, epoch: d.epoch}
}

func (d *Detector) enqueue(a *record.Alert) bool {
	if len(d.pending) >= maxPendingAlerts {
		d.dropped++
		return false
	}
	d.pending = append(d.pending, a)
	return true
}
