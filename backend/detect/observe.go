package detect

import (
	"slices"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// observe records one verify outcome. The caller holds d.mu.
func (d *Detector) observe(now time.Time, th Thresholds, in record.VerifyInput, res record.VerifyResult) {
	outcome := res.Code
	if res.Active {
		outcome = record.OutcomeActive
	}
	if outcome == "" {
		outcome = "unknown"
	}
	d.outcomes[outcome]++
	d.byClient[ClientOutcome{Client: th.clientLabel(res.Key), Outcome: outcome}]++
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
	if typ := record.AlertTypeOf(res.Code); typ != "" && d.bump(kw, typ) {
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
func (d *Detector) observeFailure(now time.Time, th Thresholds, in record.VerifyInput) {
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
		// list is rendered when the alert is handed over (Drain).
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
func (d *Detector) observeAddress(now time.Time, kw *keyWindow, res record.VerifyResult, addr string) {
	set, ok := d.addrs.Get(res.Key.KeyID)
	if !ok {
		set = &addrSet{}
		d.addrs.Add(res.Key.KeyID, set) // evicts the least recently verified key's set
	}
	set.successes++
	if slices.Contains(set.addrs, addr) {
		return
	}
	if set.successes > EstablishedAfter && !d.bump(kw, record.AlertNewAddress) {
		d.keyAlert(now, kw, res, record.AlertNewAddress, record.SeverityInfo,
			"key used from an address outside its usual set", addrDetail(addr))
	}
	if len(set.addrs) < maxAddrsPerKey {
		set.addrs = append(set.addrs, addr)
	}
}

// bump counts one more occurrence into this window's alert of type typ,
// if it is still in the buffer. Callers check it before building a new
// alert, so the hot path allocates nothing once an alert is raised.
func (d *Detector) bump(kw *keyWindow, typ string) bool {
	if a := kw.alerts[typ].open(d); a != nil {
		a.Count++
		return true
	}
	return false
}

// keyAlert raises the alert of a key and type in this window (callers
// first try bump): the first one, or a follow-up of one handed over.
func (d *Detector) keyAlert(now time.Time, kw *keyWindow, res record.VerifyResult, typ, severity, msg string, details map[string]string) {
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
func (d *Detector) follows(details map[string]string, prev *burst) {
	if prev.id != "" {
		details["continues"] = prev.id
	}
}

// newAlert builds a detected alert. Its id is set here, so that a
// follow-up can name it before it is stored; should newID fail, the alert
// goes without one (whoever stores it assigns one) and a follow-up goes
// without the link.
func (d *Detector) newAlert(now time.Time, typ, severity, msg string, count int, details map[string]string) *record.Alert {
	a := &record.Alert{Type: typ, Severity: severity, Time: now, Message: msg, Count: count, Details: details}
	if id, err := d.newID(now); err == nil {
		a.ID = id
	}
	return a
}
