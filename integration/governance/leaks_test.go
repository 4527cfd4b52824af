package governance

import (
	"net/http"
	"strings"
	"testing"
)

// A leak report with an oversized field is refused whole, before the key is
// touched (on Raft, 1.2 MB in one entry used to revoke the key and then fail
// storing the alert, leaving no alert, no leak.reported entry and a retry
// answering already_revoked); the same report within the limits revokes,
// alerts and logs the time-to-revoke.
func TestLeakReportAllOrNothing(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "r", nil)
	key := issue(t, m, "billing", "main", "r")

	huge := strings.Repeat("s", 1200*1024)
	_, err := client(t).Logical().Write(m+"/leaks", map[string]interface{}{"key": key, "reporter": "r", "source": huge})
	expectStatus(t, err, http.StatusBadRequest, "source: at most")
	_, err = client(t).Logical().Write(m+"/leaks", map[string]interface{}{"key": key, "reporter": strings.Repeat("r", 4096)})
	expectStatus(t, err, http.StatusBadRequest, "reporter: at most")
	if active, code := verify(t, m, key, nil); !active {
		t.Fatalf("a refused leak report revoked the key: %s", code)
	}
	if types := logTypes(t, m); types["leak.reported"] || types["key.revoked"] || types["alert.raised"] {
		t.Fatalf("a refused leak report left log entries: %v", types)
	}

	s := write(t, m+"/leaks", map[string]interface{}{"key": key, "reporter": "r", "source": "https://git.example/acme/app/commit/abc", "detected_at": "2020-01-01T00:00:00Z"})
	if s.Data["status"] != "revoked" || s.Data["alert_id"] == nil {
		t.Fatalf("leak report: %v", s.Data)
	}
	if active, code := verify(t, m, key, nil); active || code != "revoked" {
		t.Fatalf("verify after the leak report: active=%v code=%q", active, code)
	}
	alerts, err := client(t).Logical().ReadWithData(m+"/alerts", map[string][]string{"type": {"leak_reported"}})
	if err != nil {
		t.Fatal(err)
	}
	if list := alerts.Data["alerts"].([]interface{}); len(list) != 1 || list[0].(map[string]interface{})["id"] != s.Data["alert_id"] {
		t.Fatalf("leak alerts: %v", alerts.Data)
	}
	log, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	leaks := 0
	for _, e := range log.Data["entries"].([]interface{}) {
		ev := e.(map[string]interface{})
		if ev["type"] != "leak.reported" {
			continue
		}
		leaks++
		d := ev["details"].(map[string]interface{})
		if d["status"] != "revoked" || d["alert_id"] != s.Data["alert_id"] || d["time_to_revoke_seconds"] == nil {
			t.Fatalf("leak.reported entry: %v", ev)
		}
	}
	if leaks != 1 {
		t.Fatalf("%d leak.reported entries, want 1", leaks)
	}
	if s = write(t, m+"/leaks", map[string]interface{}{"key": key}); s.Data["status"] != "already_revoked" {
		t.Fatalf("repeat: %v", s.Data)
	}
}
