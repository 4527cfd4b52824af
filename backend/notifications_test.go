package backend

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/notify"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// fakeReceiver stands in for webhook receivers in unit tests; the
// integration tests use a real HTTP receiver and an independent Standard
// Webhooks library.
type fakeReceiver struct {
	mu   sync.Mutex
	down bool
	got  []delivery // successful deliveries, in order
	hits int
}

type delivery struct {
	url     string
	headers map[string]string
	body    []byte
	payload struct {
		Type string `json:"type"`
		Data struct {
			Seq     uint64            `json:"seq"`
			Client  string            `json:"client"`
			KeyID   string            `json:"key_id"`
			Details map[string]string `json:"details"`
			Actor   map[string]string `json:"actor"`
		} `json:"data"`
	}
}

func (r *fakeReceiver) send(_ context.Context, url string, headers map[string]string, body []byte) notify.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if r.down {
		return notify.Result{Status: 503, Err: "503 Service Unavailable"}
	}
	d := delivery{url: url, headers: headers, body: body}
	if err := json.Unmarshal(body, &d.payload); err != nil {
		panic(err)
	}
	r.got = append(r.got, d)
	return notify.Result{Status: 204}
}

func (r *fakeReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// types lists the event types received at url (all urls when "").
func (r *fakeReceiver) types(url string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.got {
		if url == "" || d.url == url {
			out = append(out, d.payload.Type)
		}
	}
	return out
}

func (r *fakeReceiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, d := range r.got {
		out[d.headers["webhook-id"]]++
	}
	return out
}

func newNotifyEnv(t *testing.T) (*testEnv, *fakeReceiver) {
	rcv := &fakeReceiver{}
	e := newTestEnv(t, withWebhookSender(rcv.send))
	return e, rcv
}

// pump steps the outbox until it reports nothing left to do now.
func (e *testEnv) pump() {
	e.t.Helper()
	for i := 0; i < 1000; i++ {
		more, err := e.b.outbox.Step(e.ctx, e.storage)
		if err != nil {
			e.t.Fatalf("outbox step: %v", err)
		}
		if !more {
			return
		}
	}
	e.t.Fatal("outbox never settled")
}

func (e *testEnv) endpoint(name string, data map[string]interface{}) string {
	e.t.Helper()
	resp := e.ok(logical.CreateOperation, "notifications/endpoints/"+name, data)
	secret, _ := resp.Data["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		e.t.Fatalf("endpoint %s: no secret returned: %v", name, resp.Data)
	}
	return secret
}

func (e *testEnv) deliveryState(name string) *outbox.State {
	e.t.Helper()
	st, err := e.b.outbox.State(e.ctx, e.storage, name)
	if err != nil || st == nil {
		e.t.Fatalf("state of %s: %v", name, err)
	}
	return st
}

// verifySignature checks a delivery as the Standard Webhooks spec defines
// it, with the endpoint's secret.
func verifySignature(t *testing.T, secret string, d delivery) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.headers["webhook-id"] + "." + d.headers["webhook-timestamp"] + "." + string(d.body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(d.headers["webhook-signature"]) {
		if sig == want {
			return
		}
	}
	t.Fatalf("no signature by the endpoint's secret in %q", d.headers["webhook-signature"])
}

func TestWebhookDeliversSelectedEventsSigned(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	secret := e.endpoint("secops", map[string]interface{}{"url": "https://hooks.example.com/a", "event_types": "key.*,client.locked"})
	e.endpoint("acme-only", map[string]interface{}{"url": "https://hooks.example.com/b", "event_types": "*", "clients": "other"})
	e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "svc"})
	e.ok(logical.UpdateOperation, "keys/acme/main/revoke", map[string]interface{}{"reason": "test"})
	e.ok(logical.UpdateOperation, "clients/acme/lock", map[string]interface{}{"reason": "incident"})
	e.pump()

	// Deliveries go out concurrently: the order is not kept (each payload
	// carries its log sequence number).
	got := rcv.types("https://hooks.example.com/a")
	sort.Strings(got)
	if strings.Join(got, ",") != "client.locked,key.issued,key.revoked" {
		t.Fatalf("secops got %s", got)
	}
	if got := rcv.types("https://hooks.example.com/b"); len(got) != 0 {
		t.Fatalf("the endpoint for client other got %v", got)
	}
	for _, d := range rcv.got {
		verifySignature(t, secret, d)
		if ts, err := strconv.ParseInt(d.headers["webhook-timestamp"], 10, 64); err != nil || ts != e.clock.Now().Unix() {
			t.Fatalf("webhook-timestamp %q, want %d", d.headers["webhook-timestamp"], e.clock.Now().Unix())
		}
		if d.payload.Data.Client != "acme" || d.payload.Data.Actor["accessor"] != "" {
			t.Fatalf("payload data %+v", d.payload.Data)
		}
		if strings.Contains(string(d.body), "ak_") || strings.Contains(string(d.body), "whsec_") {
			t.Fatalf("payload carries a secret: %s", d.body)
		}
	}
	st := e.deliveryState("secops")
	if st.Delivered != 3 || len(st.Recent) != 3 || st.Recent[2].Outcome != outbox.OutcomeDelivered {
		t.Fatalf("state %+v", st)
	}
}

func TestWebhookFiltersBySeverityAndOwner(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil) // owner team-acme
	e.endpoint("critical", map[string]interface{}{"url": "https://hooks.example.com/crit", "event_types": "alert.*", "min_severity": "critical"})
	e.endpoint("owner", map[string]interface{}{"url": "https://hooks.example.com/owner", "event_types": "*", "owners": "team-acme"})
	e.endpoint("nobody", map[string]interface{}{"url": "https://hooks.example.com/nobody", "event_types": "*", "owners": "team-else"})
	for _, sev := range []string{record.SeverityInfo, record.SeverityCritical} {
		if err := e.b.raiseAlert(e.ctx, e.storage, &record.Alert{Type: record.AlertVerifyBurst, Severity: sev, Client: "acme", Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	e.pump()
	if got := rcv.types("https://hooks.example.com/crit"); len(got) != 1 || got[0] != "alert.verify_burst" {
		t.Fatalf("critical endpoint got %v", got)
	}
	if got := rcv.types("https://hooks.example.com/owner"); len(got) != 2 {
		t.Fatalf("owner endpoint got %v", got)
	}
	if got := rcv.types("https://hooks.example.com/nobody"); len(got) != 0 {
		t.Fatalf("other owner's endpoint got %v", got)
	}
}

func TestWebhookRetriesWhileDownThenCatchesUp(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.endpoint("ops", map[string]interface{}{"url": "https://hooks.example.com/ops", "event_types": "key.issued"})
	rcv.setDown(true)
	for i := 0; i < 40; i++ {
		e.ok(logical.CreateOperation, "keys/acme/k"+strconv.Itoa(i), map[string]interface{}{"role": "svc"})
	}
	e.pump()
	st := e.deliveryState("ops")
	if st.Failures == 0 || len(st.Pending) != 40 {
		t.Fatalf("after a failed batch: failures %d, pending %d", st.Failures, len(st.Pending))
	}
	// While down, only the oldest waiting delivery is tried, as a probe,
	// when its backoff ends; new events wait in the log.
	for i := 40; i < 60; i++ {
		e.ok(logical.CreateOperation, "keys/acme/k"+strconv.Itoa(i), map[string]interface{}{"role": "svc"})
	}
	hits := rcv.hits
	e.pump()
	if rcv.hits != hits {
		t.Fatalf("%d attempts before any backoff ended", rcv.hits-hits)
	}
	e.clock.Advance(10 * time.Second)
	e.pump()
	if rcv.hits != hits+1 {
		t.Fatalf("%d attempts after the first backoff, want one probe", rcv.hits-hits)
	}
	rcv.setDown(false)
	e.clock.Advance(30 * time.Second)
	e.pump()
	ids := rcv.ids()
	if len(ids) != 60 {
		t.Fatalf("%d distinct events delivered, want 60", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
	st = e.deliveryState("ops")
	if len(st.Pending) != 0 || st.Failures != 0 || st.Delivered != 60 {
		t.Fatalf("after recovery: %+v", st)
	}
}

func TestWebhookDeadLettersAlertsAndReplays(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.ok(logical.UpdateOperation, "notifications/config", map[string]interface{}{"retry_window": "1h"})
	e.endpoint("ops", map[string]interface{}{"url": "https://hooks.example.com/ops", "event_types": "key.issued,alert.*"})
	e.endpoint("pager", map[string]interface{}{"url": "https://hooks.example.com/pager", "event_types": "alert.webhook_dead_lettered"})
	// The pager stays up; ops goes down.
	down := "https://hooks.example.com/ops"
	e.b.outbox = e.b.newOutbox(func(ctx context.Context, url string, h map[string]string, body []byte) notify.Result {
		if url == down {
			return notify.Result{Status: 500, Err: "500 Internal Server Error"}
		}
		return rcv.send(ctx, url, h, body)
	})
	e.ok(logical.CreateOperation, "keys/acme/a", map[string]interface{}{"role": "svc"})
	for i := 0; i < 30; i++ {
		e.pump()
		e.clock.Advance(5 * time.Minute)
	}
	e.ok(logical.CreateOperation, "keys/acme/b", map[string]interface{}{"role": "svc"})
	for i := 0; i < 30; i++ {
		e.pump()
		e.clock.Advance(5 * time.Minute)
	}
	alerts := e.alertsOf(record.AlertWebhookDeadLettered)
	if len(alerts) == 0 || alerts[0].Details["endpoint"] != "ops" {
		t.Fatalf("dead-letter alerts: %v", alerts)
	}
	if got := rcv.types("https://hooks.example.com/pager"); len(got) == 0 {
		t.Fatal("the dead-letter alert was not delivered to the pager endpoint")
	}
	st := e.deliveryState("ops")
	if st.Deadlettered != 2 || len(st.Dead) == 0 {
		t.Fatalf("ops state %+v", st)
	}
	down = ""
	resp := e.ok(logical.UpdateOperation, "notifications/endpoints/ops/replay", map[string]interface{}{"dead_letters": true})
	if resp.Data["queued"].(int) != 2 {
		t.Fatalf("replay answer %v", resp.Data)
	}
	e.pump()
	got := rcv.types("https://hooks.example.com/ops")
	if strings.Join(got, ",") != "key.issued,key.issued" {
		t.Fatalf("replayed to ops: %v", got)
	}
	if st := e.deliveryState("ops"); len(st.Dead) != 0 || len(st.Pending) != 0 {
		t.Fatalf("after replay: %+v", st)
	}
}

func TestWebhookStateStaysBoundedWhenDownForADay(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.endpoint("ops", map[string]interface{}{"url": "https://hooks.example.com/ops", "event_types": "*"})
	rcv.setDown(true)
	for h := 0; h < 26; h++ {
		for i := 0; i < 40; i++ {
			if err := e.b.raiseAlert(e.ctx, e.storage, &record.Alert{Type: record.AlertNewAddress, Client: "acme", Message: "m"}); err != nil {
				t.Fatal(err)
			}
		}
		for m := 0; m < 12; m++ {
			e.pump()
			e.clock.Advance(5 * time.Minute)
		}
	}
	entry, err := e.storage.Get(e.ctx, outbox.StatePrefix+"ops")
	if err != nil || entry == nil {
		t.Fatal(err)
	}
	st := e.deliveryState("ops")
	if len(entry.Value) > 64<<10 || len(st.Pending) > outbox.MaxPending || len(st.Recent) > outbox.MaxRecent {
		t.Fatalf("state of a day-long outage: %d bytes, %d pending, %d recent", len(entry.Value), len(st.Pending), len(st.Recent))
	}
	if st.Deadlettered == 0 {
		t.Fatal("nothing was dead-lettered after a day down")
	}
	keys, err := e.storage.List(e.ctx, "notifications/")
	if err != nil || len(keys) > 4 {
		t.Fatalf("notification storage grew: %v %v", keys, err)
	}
}

func TestWebhookResumesAfterRestart(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.endpoint("ops", map[string]interface{}{"url": "https://hooks.example.com/ops", "event_types": "key.issued"})
	e.ok(logical.CreateOperation, "keys/acme/a", map[string]interface{}{"role": "svc"})
	// The mount stops before delivering: a new backend on the same
	// storage (a restarted plugin, a new active node) delivers it.
	r := e.reloaded()
	r.b.outbox = r.b.newOutbox(rcv.send)
	r.pump()
	r.pump()
	if got := rcv.types(""); len(got) != 1 || got[0] != "key.issued" {
		t.Fatalf("after restart got %v", got)
	}
}

func TestWebhookSecretRotationSignsWithBothDuringOverlap(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	old := e.endpoint("ops", map[string]interface{}{"url": "https://hooks.example.com/ops", "event_types": "key.issued"})
	resp := e.ok(logical.UpdateOperation, "notifications/endpoints/ops/rotate-secret", map[string]interface{}{"overlap": "1h"})
	next := resp.Data["secret"].(string)
	if next == old || !strings.HasPrefix(next, "whsec_") {
		t.Fatalf("rotate-secret answered %v", resp.Data)
	}
	if read := e.ok(logical.ReadOperation, "notifications/endpoints/ops", nil); read.Data["secret"] != nil || strings.Contains(fmtData(read.Data), "whsec_") {
		t.Fatalf("a read shows a secret: %v", read.Data)
	}
	e.ok(logical.CreateOperation, "keys/acme/a", map[string]interface{}{"role": "svc"})
	e.pump()
	verifySignature(t, old, rcv.got[0])
	verifySignature(t, next, rcv.got[0])
	e.clock.Advance(2 * time.Hour)
	e.ok(logical.CreateOperation, "keys/acme/b", map[string]interface{}{"role": "svc"})
	e.pump()
	verifySignature(t, next, rcv.got[1])
	if n := len(strings.Fields(rcv.got[1].headers["webhook-signature"])); n != 1 {
		t.Fatalf("%d signatures after the overlap", n)
	}
}

func TestWebhookEndpointInputIsChecked(t *testing.T) {
	e, _ := newNotifyEnv(t)
	for _, c := range []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"event_types": "*"}, "url is required"},
		{map[string]interface{}{"url": "https://h.example.com"}, "event_types is required"},
		{map[string]interface{}{"url": "http://h.example.com", "event_types": "*"}, "url"},
		{map[string]interface{}{"url": "https://169.254.169.254/latest", "event_types": "*"}, "url"},
		{map[string]interface{}{"url": "https://127.0.0.1/", "event_types": "*"}, "loopback"},
		{map[string]interface{}{"url": "https://h.example.com", "event_types": "Key Revoked"}, "event_types"},
		{map[string]interface{}{"url": "https://h.example.com", "event_types": "*", "min_severity": "loud"}, "min_severity"},
	} {
		e.userErr(logical.CreateOperation, "notifications/endpoints/x", c.data, c.want)
	}
	if keys, _ := e.storage.List(e.ctx, outbox.EndpointPrefix); len(keys) != 0 {
		t.Fatalf("a refused endpoint was stored: %v", keys)
	}
	e.ok(logical.UpdateOperation, "notifications/config", map[string]interface{}{"allow_http": true, "allow_loopback": true})
	e.endpoint("x", map[string]interface{}{"url": "http://127.0.0.1:8080/hook", "event_types": "*"})
	e.userErr(logical.UpdateOperation, "notifications/endpoints/x/replay", map[string]interface{}{"seq": 1, "dead_letters": true}, "exactly one")
	e.userErr(logical.UpdateOperation, "notifications/endpoints/x/replay", map[string]interface{}{"seq": 99999}, "the log has")
	e.userErr(logical.UpdateOperation, "notifications/config", map[string]interface{}{"retry_window": "1s"}, "retry_window")
}

func fmtData(d map[string]interface{}) string {
	b, _ := json.Marshal(d)
	return string(b)
}

// driveNotifications drives every notifications path for TestResponses.
func driveNotifications(r *respEnv) {
	r.check(logical.UpdateOperation, "notifications/config", map[string]interface{}{"retry_window": "2h", "allow_http": true, "allow_loopback": true})
	r.check(logical.ReadOperation, "notifications/config", nil)
	r.check(logical.CreateOperation, "notifications/endpoints/ops", map[string]interface{}{"url": "http://127.0.0.1:9/hook", "event_types": "alert.*"})
	r.check(logical.UpdateOperation, "notifications/endpoints/ops", map[string]interface{}{"description": "on-call"})
	r.check(logical.ReadOperation, "notifications/endpoints/ops", nil)
	r.check(logical.ListOperation, "notifications/endpoints", nil)
	r.check(logical.UpdateOperation, "notifications/endpoints/ops/rotate-secret", nil)
	r.check(logical.UpdateOperation, "notifications/endpoints/ops/replay", map[string]interface{}{"seq": 1})
	r.check(logical.ReadOperation, "notifications/deliveries", nil)
	r.check(logical.DeleteOperation, "notifications/endpoints/ops", nil)
}

// The outbox hands every raised alert to the response policies, whichever
// part of the mount raised it, and again after a restart until handled.
func TestOutboxHandsAlertsToResponsePolicies(t *testing.T) {
	e, _ := newNotifyEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.ok(logical.CreateOperation, "responses/lockdown", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"})
	e.pump() // the follower starts at the log's head
	key := e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": key, "source": "test"})
	if c, _ := e.b.getClient(e.ctx, e.storage, "acme"); c.Status != record.ClientActive {
		t.Fatalf("client %s before the outbox ran", c.Status)
	}
	e.pump()
	if c, _ := e.b.getClient(e.ctx, e.storage, "acme"); c.Status != record.ClientLocked {
		t.Fatalf("client %s after the outbox ran, want locked", c.Status)
	}
	found := false
	for _, typ := range e.logTypes() {
		found = found || typ == "response.executed"
	}
	if !found {
		t.Fatal("no response.executed entry")
	}
}

// Approvers hear of requests waiting, and requesters of the decisions.
func TestWebhookCarriesApprovalRequests(t *testing.T) {
	e, rcv := newNotifyEnv(t)
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	e.endpoint("approvers", map[string]interface{}{"url": "https://hooks.example.com/approvers", "event_types": "request.*"})
	approved := e.newRequest("alice", "billing", "gated", "main", nil)
	expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+approved+"/approve", nil))
	denied := e.newRequest("alice", "billing", "gated", "other", nil)
	expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+denied+"/deny", nil))
	e.pump()
	got := rcv.types("")
	sort.Strings(got)
	if strings.Join(got, ",") != "request.approved,request.created,request.created,request.denied" {
		t.Fatalf("approvers got %v", got)
	}
}
