package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// A record above the bound is refused with an error naming it, and nothing
// is stored: Raft would refuse it with a 500 and "value too large".
func TestPutJSONRefusesOversizedRecord(t *testing.T) {
	e := newTestEnv(t)
	big := map[string]string{"v": strings.Repeat("a", maxEntryBytes)}
	err := putJSON(e.ctx, e.storage, "clients/big", `client "big"`, big)
	if !errors.Is(err, errEntryTooLarge) || !strings.Contains(err.Error(), `client "big"`) {
		t.Fatalf("putJSON = %v", err)
	}
	if entry, _ := e.storage.Get(e.ctx, "clients/big"); entry != nil {
		t.Fatal("an oversized record was stored")
	}
	small := map[string]string{"v": strings.Repeat("a", 1024)}
	if err := putJSON(e.ctx, e.storage, "clients/small", "small", small); err != nil {
		t.Fatal(err)
	}
}

// Alerts are bounded when stored, and an oversized alert already in
// storage (stored before the bounds existed) neither breaks alert reads
// nor comes back whole.
func TestAlertsBoundedWhenStoredAndRead(t *testing.T) {
	e := newTestEnv(t)
	huge := strings.Repeat("x", 1200*1024)
	old := &record.Alert{ID: "0000000000000001aaaaaaaa", Type: record.AlertForbiddenAudience, Severity: record.SeverityWarning,
		Time: testStart, Message: huge, Details: map[string]string{"audience": huge}, Count: 1}
	entry, err := logical.StorageEntryJSON(alertStorageKey(old.ID), old)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.storage.Put(e.ctx, entry); err != nil {
		t.Fatal(err)
	}
	if err := e.b.raiseAlert(e.ctx, e.storage, &record.Alert{Type: record.AlertLeakReported, Message: huge, Details: map[string]string{"source": huge}}); err != nil {
		t.Fatalf("raising an alert with oversized text: %v", err)
	}
	for i := 0; i < 2; i++ {
		list := e.ok(logical.ReadOperation, "alerts", nil).Data["alerts"].([]map[string]interface{})
		if len(list) != 2 {
			t.Fatalf("%d alerts listed, want 2", len(list))
		}
		for _, a := range list {
			msg := a["message"].(string)
			det := a["details"].(map[string]interface{})
			if utf8.RuneCountInString(msg) > detect.MaxAlertMessage+1 || det["truncated"] != "true" {
				t.Fatalf("alert %v not bounded: message %d chars, details %v", a["id"], len(msg), len(det))
			}
			for k, v := range det {
				if utf8.RuneCountInString(fmt.Sprint(v)) > detect.MaxAlertDetail+1 {
					t.Fatalf("alert %v: detail %s has %d chars", a["id"], k, len(fmt.Sprint(v)))
				}
			}
		}
	}
	got := e.ok(logical.ReadOperation, "alerts/"+old.ID, nil).Data
	if len(got["message"].(string)) > 4*detect.MaxAlertMessage {
		t.Fatalf("alert read returns the whole oversized message")
	}
}
