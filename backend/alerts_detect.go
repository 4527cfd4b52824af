package backend

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/lru"
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
		cfg = defaultConfig()
	}
	return thresholds{window: cfg.AlertWindow, burst: cfg.VerifyBurstThreshold, failedVerify: cfg.FailedVerifyThreshold}
}

// keyWindow counts one key's verify traffic in the current window. The
// alert pointers aggregate further occurrences into an alert still waiting
// in the buffer.
type keyWindow struct {
	verifies int
	alerts   map[string]*Alert // by alert type, raised this window
}

// addrSet is the set of addresses a key was verified from successfully. A
// slice: at most maxAddrsPerKey entries, smaller than a map and as fast to
// search at that size.
type addrSet struct {
	addrs     []string
	successes int
}

// detector is the hot-path state. The zero value is ready to use.
type detector struct {
	windowStart time.Time
	perKey      map[string]*keyWindow
	failed      int
	failedAlert *Alert
	failedSrc   map[string]int
	addrs       *lru.Cache[string, *addrSet] // by key_id

	pending []*Alert
	dropped int
	// outcomes counts verify outcomes ("active" or the code) since the
	// last flush.
	outcomes map[string]uint64
}

// observe records one verify outcome. The caller holds the runtime's mutex.
func (d *detector) observe(now time.Time, th thresholds, in verifyInput, res verifyResult) {
	if d.outcomes == nil {
		d.outcomes = map[string]uint64{}
		d.perKey = map[string]*keyWindow{}
		d.failedSrc = map[string]int{}
		d.addrs = lru.New[string, *addrSet](maxAddrKeys)
	}
	outcome := res.Code
	if res.Active {
		outcome = outcomeActive
	}
	if outcome == "" {
		outcome = "unknown"
	}
	d.outcomes[outcome]++
	if d.windowStart.IsZero() || now.Sub(d.windowStart) >= th.window || now.Before(d.windowStart) {
		d.windowStart = now
		d.perKey = map[string]*keyWindow{}
		d.failed, d.failedAlert = 0, nil
		d.failedSrc = map[string]int{}
	}
	switch res.Code {
	case codeNotFound, codeMalformed:
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
		kw = &keyWindow{alerts: map[string]*Alert{}}
		d.perKey[k.KeyID] = kw
	}
	kw.verifies++
	if kw.verifies > th.burst && !kw.bump(alertVerifyBurst) {
		d.keyAlert(now, kw, res, alertVerifyBurst, severityWarning,
			"more than "+strconv.Itoa(th.burst)+" verifies of one key within "+th.window.String(),
			map[string]string{"threshold": strconv.Itoa(th.burst), "window": th.window.String()})
	}
	if res.Code != "" && kw.bump(alertTypeOfCode[res.Code]) {
		return // counted into this window's alert; nothing to build
	}
	switch res.Code {
	case codeForbiddenIP:
		d.keyAlert(now, kw, res, alertForbiddenIP, severityWarning,
			"key used from an address outside its bound CIDRs", addrDetail(in.ClientIP))
	case codeForbiddenScope:
		d.keyAlert(now, kw, res, alertForbiddenScope, severityWarning,
			"key presented for scopes it does not hold", map[string]string{"requested_scopes": joinScopes(in.Scopes)})
	case codeForbiddenAudience:
		d.keyAlert(now, kw, res, alertForbiddenAudience, severityWarning,
			"key presented to an audience it is not for", map[string]string{"requested_audience": in.Audience})
	}
	if res.Active && in.ClientIP != "" {
		d.observeAddress(now, kw, res, in.ClientIP)
	}
}

// observeFailure counts not_found/malformed answers: many in one window
// means someone is guessing keys.
func (d *detector) observeFailure(now time.Time, th thresholds, in verifyInput) {
	d.failed++
	if in.ClientIP != "" {
		if _, ok := d.failedSrc[in.ClientIP]; ok || len(d.failedSrc) < maxFailedSources {
			d.failedSrc[in.ClientIP]++
		}
	}
	if d.failed <= th.failedVerify {
		return
	}
	if d.failedAlert != nil {
		// Only the count on this (guessing-attack) hot path; the source
		// list is rendered when the alert is handed over (drain).
		d.failedAlert.Count = d.failed
		return
	}
	a := &Alert{
		Type:     alertFailedVerifyBurst,
		Severity: severityCritical,
		Time:     now,
		Message:  "more than " + strconv.Itoa(th.failedVerify) + " failed verifies (not_found or malformed) within " + th.window.String() + ": possible key guessing",
		Count:    d.failed,
		Details: map[string]string{
			"threshold": strconv.Itoa(th.failedVerify),
			"window":    th.window.String(),
			"sources":   topSources(d.failedSrc),
		},
	}
	if d.enqueue(a) {
		d.failedAlert = a
	}
}

// observeAddress learns a key's usual addresses and alerts on a new one
// once the set is established.
func (d *detector) observeAddress(now time.Time, kw *keyWindow, res verifyResult, addr string) {
	set, ok := d.addrs.Get(res.Key.KeyID)
	if !ok {
		set = &addrSet{}
		d.addrs.Add(res.Key.KeyID, set) // evicts the least recently verified key's set
	}
	set.successes++
	if slices.Contains(set.addrs, addr) {
		return
	}
	if set.successes > establishedAfter && !kw.bump(alertNewAddress) {
		d.keyAlert(now, kw, res, alertNewAddress, severityInfo,
			"key used from an address outside its usual set", addrDetail(addr))
	}
	if len(set.addrs) < maxAddrsPerKey {
		set.addrs = append(set.addrs, addr)
	}
}

// alertTypeOfCode maps verify codes to the alert they raise.
var alertTypeOfCode = map[string]string{
	codeForbiddenIP:       alertForbiddenIP,
	codeForbiddenScope:    alertForbiddenScope,
	codeForbiddenAudience: alertForbiddenAudience,
}

// bump counts one more occurrence into this window's alert of type typ,
// if there is one. Callers check it before building a new alert, so the
// hot path allocates nothing once an alert is raised.
func (kw *keyWindow) bump(typ string) bool {
	if a := kw.alerts[typ]; a != nil {
		a.Count++
		return true
	}
	return false
}

// keyAlert raises one alert per key and type and window (callers first try
// bump).
func (d *detector) keyAlert(now time.Time, kw *keyWindow, res verifyResult, typ, severity, msg string, details map[string]string) {
	k := res.Key
	a := &Alert{
		Type: typ, Severity: severity, Time: now, Message: msg, Count: 1, Details: details,
		Client: k.Client, Key: k.Name, KeyID: k.KeyID, Role: k.Role,
	}
	if res.Version != nil {
		a.Version = res.Version.Version
	}
	if d.enqueue(a) {
		kw.alerts[typ] = a
	}
}

func (d *detector) enqueue(a *Alert) bool {
	if len(d.pending) >= maxPendingAlerts {
		d.dropped++
		return false
	}
	d.pending = append(d.pending, a)
	return true
}

// drain hands over the buffered alerts and outcome counts. Alerts handed
// over are copied, so later counting into the originals (same window) does
// not race with their persistence.
func (d *detector) drain() (alerts []*Alert, outcomes map[string]uint64, dropped int) {
	for _, a := range d.pending {
		c := *a
		c.Details = make(map[string]string, len(a.Details))
		for k, v := range a.Details {
			c.Details[k] = v
		}
		if a == d.failedAlert {
			c.Details["sources"] = topSources(d.failedSrc)
		}
		alerts = append(alerts, &c)
	}
	outcomes, dropped = d.outcomes, d.dropped
	d.pending, d.outcomes, d.dropped = nil, map[string]uint64{}, 0
	return alerts, outcomes, dropped
}

// requeue puts back alerts that could not be persisted (bounded).
func (d *detector) requeue(alerts []*Alert) {
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
