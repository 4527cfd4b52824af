package backend

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Detection of suspicious verify traffic (SPEC §7). It runs inside onVerify,
// on the hot path, so it is in-memory and bounded: counters live for one
// fixed window (config alert_window) and are dropped when it ends; learned
// address sets are capped per key and kept for the most recently verified
// keys only (see maxAddrKeys). Alerts found here
// wait in a bounded buffer until governanceTick (or a read of alerts)
// persists them. State is per node and does not survive a restart; that
// costs at most one missed window, never a false alert.

const (
	// maxTrackedKeys bounds the per-key window counters; they are dropped
	// when the window ends.
	maxTrackedKeys = 10000
	// maxAddrKeys bounds the keys with a learned address set. The sets
	// live across windows, so a plain cap would fill once and then stop
	// learning for good (every key verified later would never get
	// new_address alerts); they are kept in an LRU instead: the key
	// verified least recently gives up its set, and learns afresh
	// (establishedAfter successes) when it comes back. A set holds at most
	// maxAddrsPerKey addresses, so one costs at most about 800 bytes
	// (slice, address strings, LRU links) and about 200 with one address:
	// the learned sets stay below about 20 MB, typically about 5 MB.
	maxAddrKeys = 25000
	// maxPendingAlerts bounds the buffer between two flushes; further
	// detections are counted as dropped.
	maxPendingAlerts = 1000
	// maxAddrsPerKey bounds a key's learned address set.
	maxAddrsPerKey = 16
	// establishedAfter is how many successful verifies a key needs before
	// its address set counts as established, so that a new address is news.
	establishedAfter = 20
	// maxFailedSources bounds the addresses remembered for a guessing burst.
	maxFailedSources = 8
)

// thresholds are the alert settings onVerify runs with.
type thresholds struct {
	window       time.Duration
	burst        int
	failedVerify int
}

// alertThresholds reads the cached mount config without touching storage;
// before anything loaded the config on this node, the defaults apply.
func (b *apikeysBackend) alertThresholds() thresholds {
	b.cache.mu.RLock()
	cfg := b.cache.config
	b.cache.mu.RUnlock()
	if cfg == nil {
		cfg = record.DefaultConfig()
	}
	return thresholds{window: cfg.AlertWindow, burst: cfg.VerifyBurstThreshold, failedVerify: cfg.FailedVerifyThreshold}
}

// keyWindow counts one key's verify traffic in the current window, and
// the alerts raised for it in this window, by type.
type keyWindow struct {
	verifies int
	alerts   map[string]*burst
}

// burst follows one alert of the current window (a key's alert of one
// type, or the mount's failed_verify_burst). Occurrences are counted into
// the alert while it waits in the buffer. A drain hands it over for
// storage, and from then on the detector never touches it again: the next
// occurrence in the same window raises a follow-up alert that names it
// (details "continues"), counting from one. So every occurrence is in
// exactly one stored alert, stored alerts are never rewritten behind the
// lifecycle log's back (its alert.raised entry carries the count), and an
// alert acknowledged meanwhile does not hide what came after.
type burst struct {
	alert *record.Alert // nil when the buffer was full (the detection was dropped)
	// id is alert's id, kept here: once handed over, alert is not read.
	id string
	// epoch is the detector's drain epoch when alert was buffered; a
	// different epoch means it was handed over.
	epoch uint64
}

// open is the alert still in the buffer, if any, to count into.
func (bu *burst) open(d *detector) *record.Alert {
	if bu == nil || bu.epoch != d.epoch {
		return nil
	}
	return bu.alert
}

// handedOver reports whether an alert of this burst was handed over for
// storage: the next one is a follow-up.
func (bu *burst) handedOver(d *detector) bool {
	return bu != nil && bu.alert != nil && bu.epoch != d.epoch
}

// addrSet is the set of addresses a key was verified from successfully. A
// slice: at most maxAddrsPerKey entries, smaller than a map and as fast to
// search at that size.
type addrSet struct {
	addrs     []string
	successes int
}

// detector is the hot-path state. Build it with newDetector: every field
// is set there (and by startWindow and takeBuffers, which newDetector
// runs), so no path can meet a half-built detector.
type detector struct {
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
	// last flush.
	outcomes map[string]uint64
	// epoch counts drains; see burst.
	epoch uint64
}

// newDetector returns a detector ready to observe.
func newDetector() *detector {
	d := &detector{addrs: newLRU[string, *addrSet](maxAddrKeys)}
	d.startWindow(time.Time{})
	d.takeBuffers()
	return d
}

// startWindow drops the counters of the window that ended. A zero start
// makes the next observe start a window at its own time.
func (d *detector) startWindow(now time.Time) {
	d.windowStart = now
	d.perKey = map[string]*keyWindow{}
	d.failed = 0
	d.failedBurst = nil
	d.failedSrc = map[string]int{}
}

// takeBuffers empties the buffers and returns what they held. Alerts in
// the buffer belong to the caller from now on (the epoch moves on, so no
// burst counts into them any more).
func (d *detector) takeBuffers() (alerts []*record.Alert, outcomes map[string]uint64, dropped int) {
	alerts, outcomes, dropped = d.pending, d.outcomes, d.dropped
	d.pending, d.outcomes, d.dropped = nil, map[string]uint64{}, 0
	d.epoch++
	return alerts, outcomes, dropped
}

// observe records one verify outcome. The caller holds the runtime's mutex.
func (d *detector) observe(now time.Time, th thresholds, in record.VerifyInput, res record.VerifyResult) {
	outcome := res.Code
	if res.Active {
		outcome = record.OutcomeActive
	}
	if outcome == "" {
		outcome = "unknown"
	}
	d.outcomes[outcome]++
	if d.windowStart.IsZero() || now.Sub(d.windowStart) >= th.window || now.Before(d.windowStart) {
		d.startWindow(now)
	}
	switch res.Code {
	case record.CodeNotFound, record.CodeMalformed:
		d.observeFailure(now, th, in)
		return
	}
	k := res.Key
	if k == nil || k.KeyID == "" {
		return
	}
	kw := d.perKey[k.KeyID]
	if kw == nil {
		if len(d.perKey) >= maxTrackedKeys {
			return
		}
		kw = &keyWindow{alerts: map[string]*burst{}}
		d.perKey[k.KeyID] = kw
	}
	kw.verifies++
	if kw.verifies > th.burst && !d.bump(kw, record.AlertVerifyBurst) {
		d.keyAlert(now, kw, res, record.AlertVerifyBurst, record.SeverityWarning,
			"more than "+strconv.Itoa(th.burst)+" verifies of one key within "+th.window.String(),
			map[string]string{"threshold": strconv.Itoa(th.burst), "window": th.window.String()})
	}
	if typ := alertTypeOfCode[res.Code]; typ != "" && d.bump(kw, typ) {
		return // counted into this window's alert; nothing to build
	}
	switch res.Code {
	case record.CodeForbiddenIP:
		d.keyAlert(now, kw, res, record.AlertForbiddenIP, record.SeverityWarning,
			"key used from an address outside its bound CIDRs", addrDetail(in.ClientIP))
	case record.CodeForbiddenScope:
		d.keyAlert(now, kw, res, record.AlertForbiddenScope, record.SeverityWarning,
			"key presented for scopes it does not hold", map[string]string{"requested_scopes": joinScopes(in.Scopes)})
	case record.CodeForbiddenAudience:
		d.keyAlert(now, kw, res, record.AlertForbiddenAudience, record.SeverityWarning,
			"key presented to an audience it is not for", map[string]string{"requested_audience": in.Audience})
	}
	if res.Active && in.ClientIP != "" {
		d.observeAddress(now, kw, res, in.ClientIP)
	}
}

// observeFailure counts not_found/malformed answers: many in one window
// means someone is guessing keys.
func (d *detector) observeFailure(now time.Time, th thresholds, in record.VerifyInput) {
	d.failed++
	if in.ClientIP != "" {
		if _, ok := d.failedSrc[in.ClientIP]; ok || len(d.failedSrc) < maxFailedSources {
			d.failedSrc[in.ClientIP]++
		}
	}
	if d.failed <= th.failedVerify {
		return
	}
	if a := d.failedBurst.open(d); a != nil {
		// Only the count on this (guessing-attack) hot path; the source
		// list is rendered when the alert is handed over (drain).
		a.Count++
		return
	}
	// The first alert of the window counts every failure of the window;
	// a follow-up counts from this one.
	count := d.failed
	details := map[string]string{
		"threshold": strconv.Itoa(th.failedVerify),
		"window":    th.window.String(),
	}
	if d.failedBurst.handedOver(d) {
		count = 1
		d.follows(details, d.failedBurst)
	}
	a := d.newAlert(now, record.AlertFailedVerifyBurst, record.SeverityCritical,
		"more than "+strconv.Itoa(th.failedVerify)+" failed verifies (not_found or malformed) within "+th.window.String()+": possible key guessing",
		count, details)
	d.failedBurst = d.buffer(a)
}

// observeAddress learns a key's usual addresses and alerts on a new one
// once the set is established.
func (d *detector) observeAddress(now time.Time, kw *keyWindow, res record.VerifyResult, addr string) {
	set, ok := d.addrs.Get(res.Key.KeyID)
	if !ok {
		set = &addrSet{}
		d.addrs.Add(res.Key.KeyID, set) // evicts the least recently verified key's set
	}
	set.successes++
	if slices.Contains(set.addrs, addr) {
		return
	}
	if set.successes > establishedAfter && !d.bump(kw, record.AlertNewAddress) {
		d.keyAlert(now, kw, res, record.AlertNewAddress, record.SeverityInfo,
			"key used from an address outside its usual set", addrDetail(addr))
	}
	if len(set.addrs) < maxAddrsPerKey {
		set.addrs = append(set.addrs, addr)
	}
}

// alertTypeOfCode maps verify codes to the alert they raise.
var alertTypeOfCode = map[string]string{
	record.CodeForbiddenIP:       record.AlertForbiddenIP,
	record.CodeForbiddenScope:    record.AlertForbiddenScope,
	record.CodeForbiddenAudience: record.AlertForbiddenAudience,
}

// bump counts one more occurrence into this window's alert of type typ,
// if it is still in the buffer. Callers check it before building a new
// alert, so the hot path allocates nothing once an alert is raised.
func (d *detector) bump(kw *keyWindow, typ string) bool {
	if a := kw.alerts[typ].open(d); a != nil {
		a.Count++
		return true
	}
	return false
}

// keyAlert raises the alert of a key and type in this window (callers
// first try bump): the first one, or a follow-up of one handed over.
func (d *detector) keyAlert(now time.Time, kw *keyWindow, res record.VerifyResult, typ, severity, msg string, details map[string]string) {
	if prev := kw.alerts[typ]; prev.handedOver(d) {
		d.follows(details, prev)
	}
	a := d.newAlert(now, typ, severity, msg, 1, details)
	k := res.Key
	a.Client, a.Key, a.KeyID, a.Role = k.Client, k.Name, k.KeyID, k.Role
	if res.Version != nil {
		a.Version = res.Version.Version
	}
	kw.alerts[typ] = d.buffer(a)
}

// follows links a follow-up's details to the alert it continues.
func (d *detector) follows(details map[string]string, prev *burst) {
	if prev.id != "" {
		details["continues"] = prev.id
	}
}

// newAlert builds a detected alert. Its id is set here, so that a
// follow-up can name it before it is stored; should the random source
// fail, raiseAlert assigns one and a follow-up goes without the link.
func (d *detector) newAlert(now time.Time, typ, severity, msg string, count int, details map[string]string) *record.Alert {
	a := &record.Alert{Type: typ, Severity: severity, Time: now, Message: msg, Count: count, Details: details}
	if id, err := newAlertID(now); err == nil {
		a.ID = id
	}
	return a
}

// buffer queues a for storage and returns the burst that follows it; a
// full buffer drops the detection (counted) and the burst follows nothing.
func (d *detector) buffer(a *record.Alert) *burst {
	if !d.enqueue(a) {
		return &burst{}
	}
	return &burst{alert: a, id: a.ID, epoch: d.epoch}
}

func (d *detector) enqueue(a *record.Alert) bool {
	if len(d.pending) >= maxPendingAlerts {
		d.dropped++
		return false
	}
	d.pending = append(d.pending, a)
	return true
}

// drain hands over the buffered alerts and outcome counts. The alerts
// themselves are handed over: the detector counts later occurrences into
// follow-ups, never into them.
func (d *detector) drain() (alerts []*record.Alert, outcomes map[string]uint64, dropped int) {
	if a := d.failedBurst.open(d); a != nil {
		a.Details["sources"] = topSources(d.failedSrc)
		d.failedSrc = map[string]int{}
	}
	return d.takeBuffers()
}

// requeue puts back alerts that could not be persisted (bounded).
func (d *detector) requeue(alerts []*record.Alert) {
	for _, a := range alerts {
		d.enqueue(a)
	}
}

// peekOutcomes copies the counts not yet flushed (for metrics).
func (d *detector) peekOutcomes() map[string]uint64 {
	out := make(map[string]uint64, len(d.outcomes))
	for k, v := range d.outcomes {
		out[k] = v
	}
	return out
}

func addrDetail(addr string) map[string]string {
	if addr == "" {
		return map[string]string{}
	}
	return map[string]string{"client_ip": addr}
}

func joinScopes(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// topSources renders the addresses of a guessing burst, most active first.
func topSources(m map[string]int) string {
	type kv struct {
		addr string
		n    int
	}
	var list []kv
	for a, n := range m {
		list = append(list, kv{a, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].addr < list[j].addr
	})
	out := ""
	for i, x := range list {
		if i > 0 {
			out += ","
		}
		out += x.addr + "=" + strconv.Itoa(x.n)
	}
	return out
}
