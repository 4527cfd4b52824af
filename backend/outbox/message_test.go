package outbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func entryOf(t *testing.T, seq uint64, ev eventlog.Event) *eventlog.Entry {
	t.Helper()
	body, err := eventlog.Encode(ev, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return &eventlog.Entry{Seq: seq, Hash: strings.Repeat("ab", 32), Event: body}
}

func TestMessageOfAnAlertCarriesItsTypeAndSeverity(t *testing.T) {
	m, err := NewMessage(entryOf(t, 7, eventlog.Event{
		Type: eventlog.AlertRaised, Actor: record.Actor{Type: "entity", EntityID: "e1", Accessor: "acc-secretish"}, Client: "acme",
		Details: map[string]string{"alert_id": "al_1", "type": "verify_burst", "severity": "critical", "endpoint": "ops"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "alert.verify_burst" || m.Severity != "critical" || m.AlertID != "al_1" || m.Endpoint != "ops" || m.Seq != 7 {
		t.Fatalf("message %+v", m)
	}
	if m.ID != "msg_"+strings.Repeat("ab", 16) {
		t.Fatalf("webhook-id %q", m.ID)
	}
	var p map[string]interface{}
	if err := json.Unmarshal(m.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p["type"] != "alert.verify_burst" || strings.Contains(string(m.Body), "acc-secretish") {
		t.Fatalf("payload %s", m.Body)
	}
}

func TestMessageOfOtherEventsIsInfo(t *testing.T) {
	m, err := NewMessage(entryOf(t, 1, eventlog.Event{Type: eventlog.KeyRevoked, Client: "acme", KeyID: "k1"}))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "key.revoked" || m.Severity != record.SeverityInfo || m.AlertID != "" {
		t.Fatalf("message %+v", m)
	}
}

func TestMergeRangesKeepsTheBound(t *testing.T) {
	var rs []Range
	for i := uint64(1); i <= 40; i++ {
		rs = append(rs, Range{From: i * 10, To: i*10 + 1})
	}
	got := mergeRanges(rs, MaxReplays)
	if len(got) != MaxReplays {
		t.Fatalf("%d ranges", len(got))
	}
	if last := got[MaxReplays-1]; last.From != 320 || last.To != 401 {
		t.Fatalf("last range %+v, want 320-401 (the folded ones)", last)
	}
}
