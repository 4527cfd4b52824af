package detect

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var testStart = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// newDetector returns a detector whose alert ids sort by time and are
// unique, as the backend's are.
func newDetector() *Detector {
	var n atomic.Uint64
	return New(func(now time.Time) (string, error) {
		return fmt.Sprintf("%016x%08x", now.UnixNano(), n.Add(1)), nil
	})
}

func TestDetectorBounded(t *testing.T) {
	d := newDetector()
	th := Thresholds{window: time.Minute, burst: 1, failedVerify: 1}
	now := testStart
	for i := 0; i < maxPendingAlerts+10; i++ {
		k := &record.Key{KeyID: "kid_" + string(rune('a'+i%26)) + time.Duration(i).String(), Client: "c", Name: "n"}
		d.Observe(now, th, record.VerifyInput{}, record.VerifyResult{Code: record.CodeForbiddenScope, Key: k})
	}
	alerts, outcomes, _, dropped := d.Drain()
	if len(alerts) != maxPendingAlerts || dropped != 10 || outcomes[record.CodeForbiddenScope] != maxPendingAlerts+10 {
		t.Fatalf("pending %d dropped %d outcomes %v", len(alerts), dropped, outcomes)
	}
}

// observeFrom feeds the detector a successful verify of key k from addr.
func observeFrom(d *Detector, now time.Time, k *record.Key, addr string) {
	th := Thresholds{window: time.Minute, burst: 1 << 30, failedVerify: 1 << 30}
	d.Observe(now, th, record.VerifyInput{ClientIP: addr}, record.VerifyResult{Active: true, Key: k, Version: &record.KeyVersion{Version: 1}})
}

func newAddressAlerts(d *Detector, keyID string) int {
	alerts, _, _, _ := d.Drain()
	n := 0
	for _, a := range alerts {
		if a.Type == record.AlertNewAddress && a.KeyID == keyID {
			n++
		}
	}
	return n
}

// Learned address sets outlive alert windows, so they were capped in
// number of keys: once 10k keys had been verified with a client_ip, no key
// verified later ever got new_address alerts. They are an LRU now: memory
// stays bounded and the keys verified most recently are the ones learned.
func TestNewAddressDetectionLearnsKeysAfterManyOthers(t *testing.T) {
	d := newDetector()
	now := testStart
	for i := 0; i < maxAddrKeys+5000; i++ {
		if i%5000 == 0 {
			now = now.Add(time.Minute) // a new window: window counters cap at maxTrackedKeys
		}
		observeFrom(d, now, &record.Key{KeyID: fmt.Sprintf("kid_old%d", i), Client: "c", Name: fmt.Sprint(i)}, "10.0.0.1")
	}
	if n := d.addrs.Len(); n != maxAddrKeys {
		t.Fatalf("%d learned sets, want the bound %d", n, maxAddrKeys)
	}
	now = now.Add(30 * 24 * time.Hour) // a month later
	k := &record.Key{KeyID: "kid_new", Client: "c", Name: "new"}
	for i := 0; i < EstablishedAfter+5; i++ {
		observeFrom(d, now, k, "10.0.0.1")
	}
	d.Drain()
	observeFrom(d, now, k, "203.0.113.9")
	if n := newAddressAlerts(d, "kid_new"); n != 1 {
		t.Fatalf("%d new_address alerts for a key first verified after %d others, want 1", n, maxAddrKeys+5000)
	}
	// An evicted key learns afresh: its next addresses are not news until
	// its set is established again.
	old := &record.Key{KeyID: "kid_old0", Client: "c", Name: "0"}
	observeFrom(d, now, old, "198.51.100.1")
	if n := newAddressAlerts(d, "kid_old0"); n != 0 {
		t.Fatalf("an evicted key alerted on its first verify after coming back: %d", n)
	}
	if n := d.addrs.Len(); n != maxAddrKeys {
		t.Fatalf("%d learned sets, want the bound %d", n, maxAddrKeys)
	}
}

// A key verified all along keeps its set however many other keys pass by.
func TestNewAddressDetectionKeepsActiveKeys(t *testing.T) {
	d := newDetector()
	now := testStart
	k := &record.Key{KeyID: "kid_busy", Client: "c", Name: "busy"}
	for i := 0; i < EstablishedAfter+1; i++ {
		observeFrom(d, now, k, "10.0.0.1")
	}
	for i := 0; i < 3*maxAddrKeys; i++ {
		if i%5000 == 0 {
			now = now.Add(time.Minute)
			observeFrom(d, now, k, "10.0.0.1") // still in use
		}
		observeFrom(d, now, &record.Key{KeyID: fmt.Sprintf("kid_other%d", i), Client: "c", Name: fmt.Sprint(i)}, "10.0.0.2")
	}
	d.Drain()
	observeFrom(d, now, k, "203.0.113.9")
	if n := newAddressAlerts(d, "kid_busy"); n != 1 {
		t.Fatalf("%d new_address alerts for a key in constant use, want 1", n)
	}
}

// A drain must leave every part of the detector in place, even before the
// first verify: a detector with its outcome counts set but its address LRU
// nil would panic on the next verify with a client_ip.
func TestObserveAfterDrainBeforeAnyObserve(t *testing.T) {
	d := newDetector()
	if alerts, outcomes, _, dropped := d.Drain(); len(alerts) != 0 || len(outcomes) != 0 || dropped != 0 {
		t.Fatalf("drain of a new detector: %v %v %d", alerts, outcomes, dropped)
	}
	for i := 0; i < 2; i++ {
		if i > 0 {
			d.Drain()
		}
		if d.addrs == nil || d.perKey == nil || d.failedSrc == nil || d.outcomes == nil {
			t.Fatalf("drain %d left the detector half built: %+v", i+1, d)
		}
		observeFrom(d, testStart, &record.Key{KeyID: "kid_a", Client: "c", Name: "a"}, "10.1.2.3")
		d.Observe(testStart, ThresholdsOf(nil), record.VerifyInput{ClientIP: "10.1.2.3"}, record.VerifyResult{Code: record.CodeNotFound})
	}
	if got := d.PeekOutcomes(); got[record.OutcomeActive] != 1 || got[record.CodeNotFound] != 1 {
		t.Fatalf("outcomes after the second drain: %v", got)
	}
}

// A panic inside Observe fails that verify only: the lock is released
// and the detector keeps serving.
func TestObserveReleasesLockOnPanic(t *testing.T) {
	d := newDetector()
	d.mu.Lock()
	perKey := d.perKey
	d.perKey = nil // observe writes to a nil map: a panic under the lock
	d.windowStart = testStart
	d.mu.Unlock()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Observe did not panic")
			}
		}()
		observeFrom(d, testStart, &record.Key{KeyID: "kid_a", Client: "c", Name: "a"}, "10.1.2.3")
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Drain()
		d.mu.Lock()
		d.perKey = perKey
		d.mu.Unlock()
		observeFrom(d, testStart, &record.Key{KeyID: "kid_a", Client: "c", Name: "a"}, "10.1.2.3")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the detector's lock was kept after a panic")
	}
}

// Outcomes are counted whatever they are, and handed over once.
func TestOutcomesPeekedThenDrained(t *testing.T) {
	d := newDetector()
	th := ThresholdsOf(nil)
	k := &record.Key{KeyID: "kid_a", Client: "c", Name: "a"}
	d.Observe(testStart, th, record.VerifyInput{}, record.VerifyResult{Active: true, Key: k})
	d.Observe(testStart, th, record.VerifyInput{}, record.VerifyResult{Code: record.CodeRevoked, Key: k})
	d.Observe(testStart, th, record.VerifyInput{}, record.VerifyResult{})
	want := map[string]uint64{record.OutcomeActive: 1, record.CodeRevoked: 1, "unknown": 1}
	peek := d.PeekOutcomes()
	peek[record.OutcomeActive] = 99 // a copy
	_, outcomes, _, _ := d.Drain()
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	if _, outcomes, _, _ = d.Drain(); len(outcomes) != 0 {
		t.Fatalf("outcomes drained twice: %v", outcomes)
	}
}

// Requeued alerts come back with the next drain, within the buffer bound.
func TestRequeueBounded(t *testing.T) {
	d := newDetector()
	th := Thresholds{window: time.Minute, burst: 1, failedVerify: 1}
	for i := 0; i < 3; i++ {
		d.Observe(testStart, th, record.VerifyInput{}, record.VerifyResult{Code: record.CodeMalformed})
	}
	alerts, _, _, _ := d.Drain()
	if len(alerts) != 1 || alerts[0].Count != 3 {
		t.Fatalf("failed verify alerts: %+v", alerts)
	}
	more := make([]*record.Alert, maxPendingAlerts)
	for i := range more {
		more[i] = &record.Alert{Type: record.AlertForbiddenScope}
	}
	d.Requeue(append(alerts, more...))
	got, _, _, dropped := d.Drain()
	if len(got) != maxPendingAlerts || got[0] != alerts[0] || dropped != 1 {
		t.Fatalf("after requeue: %d alerts, first %p (want %p), %d dropped", len(got), got[0], alerts[0], dropped)
	}
}

func TestThresholdsOf(t *testing.T) {
	def := record.DefaultConfig()
	if got := ThresholdsOf(nil); !reflect.DeepEqual(got, Thresholds{window: def.AlertWindow, burst: def.VerifyBurstThreshold, failedVerify: def.FailedVerifyThreshold}) {
		t.Fatalf("thresholds without a config: %+v", got)
	}
	cfg := &record.Config{AlertWindow: time.Hour, VerifyBurstThreshold: 7, FailedVerifyThreshold: 3, MetricsClients: []string{"billing"}}
	if got := ThresholdsOf(cfg); !reflect.DeepEqual(got, Thresholds{window: time.Hour, burst: 7, failedVerify: 3, metricsClients: []string{"billing"}}) {
		t.Fatalf("thresholds of %+v: %+v", cfg, got)
	}
}

// Verify outcomes are counted by client label: a listed client under its
// name, any other client as _other, an answer without a key as _none.
func TestOutcomesByClientLabel(t *testing.T) {
	d := newDetector()
	th := ThresholdsOf(&record.Config{AlertWindow: time.Minute, VerifyBurstThreshold: 1000, FailedVerifyThreshold: 1000, MetricsClients: []string{"a", "billing"}})
	now := time.Unix(1700000000, 0)
	for _, c := range []string{"billing", "billing", "shop", "zeta"} {
		d.Observe(now, th, record.VerifyInput{}, record.VerifyResult{Active: true, Key: &record.Key{KeyID: "k-" + c, Client: c}})
	}
	d.Observe(now, th, record.VerifyInput{}, record.VerifyResult{Code: record.CodeNotFound})
	want := map[ClientOutcome]uint64{
		{"billing", record.OutcomeActive}:                 2,
		{record.MetricsClientOther, record.OutcomeActive}: 2,
		{record.MetricsClientNone, record.CodeNotFound}:   1,
	}
	if got := d.PeekClientOutcomes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("peek by client = %v, want %v", got, want)
	}
	if _, _, got, _ := d.Drain(); !reflect.DeepEqual(got, want) {
		t.Fatalf("drained by client = %v, want %v", got, want)
	}
	if got := d.PeekClientOutcomes(); len(got) != 0 {
		t.Fatalf("by client after drain = %v", got)
	}
}

func TestBound(t *testing.T) {
	a := &record.Alert{Message: "short", Details: map[string]string{"k": "v"}}
	Bound(a)
	if a.Message != "short" || len(a.Details) != 1 {
		t.Fatalf("a small alert was changed: %+v", a)
	}

	details := map[string]string{"a_long": strings.Repeat("é", MaxAlertDetail+5)}
	for i := 0; i < maxAlertDetails+3; i++ {
		details[fmt.Sprintf("d%02d", i)] = "x"
	}
	a = &record.Alert{Message: strings.Repeat("ü", MaxAlertMessage+1), Details: details}
	Bound(a)
	if n := utf8.RuneCountInString(a.Message); n != MaxAlertMessage+1 || !strings.HasSuffix(a.Message, "…") {
		t.Fatalf("message cut to %d characters", n)
	}
	if a.Details["truncated"] != "true" || len(a.Details) != maxAlertDetails+1 {
		t.Fatalf("%d details, truncated=%q", len(a.Details), a.Details["truncated"])
	}
	if v := a.Details["a_long"]; utf8.RuneCountInString(v) != MaxAlertDetail+1 || !strings.HasSuffix(v, "…") {
		t.Fatalf("long detail cut to %d characters", utf8.RuneCountInString(v))
	}
	for k, v := range a.Details {
		if utf8.RuneCountInString(v) > MaxAlertDetail+1 || !utf8.ValidString(v) {
			t.Fatalf("detail %s: %d characters", k, utf8.RuneCountInString(v))
		}
	}
}

// A detail too long in both its name and its value keeps the cut value
// under the cut name, and an alert without details that had to be cut
// still says so.
func TestBoundLongNameAndValue(t *testing.T) {
	long := strings.Repeat("n", maxAlertDetailKey+10)
	a := &record.Alert{Details: map[string]string{long: strings.Repeat("v", MaxAlertDetail+10)}}
	Bound(a)
	for k, v := range a.Details {
		if k == "truncated" {
			continue
		}
		if len(k) > maxAlertDetailKey+len("…") || len(v) > MaxAlertDetail+len("…") {
			t.Fatalf("detail kept at %d/%d bytes", len(k), len(v))
		}
	}
	a = &record.Alert{Message: strings.Repeat("m", MaxAlertMessage+1)}
	Bound(a)
	if a.Details["truncated"] != "true" {
		t.Fatalf("details = %v", a.Details)
	}
}
