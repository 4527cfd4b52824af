package notify

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testPolicy admits the httptest servers, which listen on plain http on
// 127.0.0.1.
var testPolicy = Policy{AllowHTTP: true, AllowLoopback: true}

func TestSendSuccess(t *testing.T) {
	type received struct {
		method string
		header http.Header
		body   string
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.Header.Clone(), string(b)}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	key := []byte("0123456789abcdef01234567")
	body := []byte(`{"type":"key.revoked"}`)
	ts := time.Unix(1700000000, 0)
	h := Headers([][]byte{key}, "msg_ok", ts, body)
	s := NewSender(SenderOptions{Policy: testPolicy, UserAgent: "apikeys-test/1"})
	res := s.Send(context.Background(), srv.URL+"/hook?token=abc", h, body)
	if !res.OK() || res.Status != http.StatusNoContent || res.Err != "" || res.Refused {
		t.Fatalf("result = %+v, want 204 OK", res)
	}
	if res.Latency <= 0 {
		t.Fatalf("latency = %v", res.Latency)
	}
	r := <-got
	if r.method != http.MethodPost || r.body != string(body) {
		t.Fatalf("server got %s %q", r.method, r.body)
	}
	for k, v := range map[string]string{
		"Webhook-Id":        "msg_ok",
		"Webhook-Timestamp": "1700000000",
		"Webhook-Signature": Sign([][]byte{key}, "msg_ok", ts, body),
		"Content-Type":      "application/json",
		"User-Agent":        "apikeys-test/1",
	} {
		if r.header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, r.header.Get(k), v)
		}
	}
}

func TestSendServerError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "boom\x00\x1b[31m\nüber "+strings.Repeat("x", 1000))
	}))
	t.Cleanup(srv.Close)
	res := NewSender(SenderOptions{Policy: testPolicy}).Send(context.Background(), srv.URL+"/?token=abc", nil, []byte(`{}`))
	if res.OK() || res.Status != 500 || res.Refused {
		t.Fatalf("result = %+v, want a 500 failure", res)
	}
	if !strings.HasPrefix(res.Err, "HTTP 500: boom??[31m ??ber xxx") {
		t.Fatalf("Err = %q, want the status and the sanitized start of the body", res.Err)
	}
	if len(res.Err) > len("HTTP 500: ")+200 {
		t.Fatalf("Err is %d bytes, want at most 200 of the body", len(res.Err))
	}
	for _, c := range []byte(res.Err) {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("Err %q holds a non-printable byte", res.Err)
		}
	}
	if strings.Contains(res.Err, "token") || strings.Contains(res.Err, "127.0.0.1") {
		t.Fatalf("Err %q repeats the URL", res.Err)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	}))
	t.Cleanup(target.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", code)
		}))
		res := NewSender(SenderOptions{Policy: testPolicy}).Send(context.Background(), srv.URL, nil, []byte(`{}`))
		srv.Close()
		if res.OK() || res.Status != code || !strings.Contains(res.Err, "redirect not followed") {
			t.Fatalf("%d: result = %+v, want a failure naming the redirect", code, res)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target was hit %d times", n)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handler end so Close returns

	res := NewSender(SenderOptions{Policy: testPolicy, Timeout: 200 * time.Millisecond}).
		Send(context.Background(), srv.URL, nil, []byte(`{}`))
	if res.OK() || res.Status != 0 || res.Refused || !strings.HasPrefix(res.Err, "timed out") {
		t.Fatalf("result = %+v, want a timeout", res)
	}
}

func TestSendCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := NewSender(SenderOptions{Policy: testPolicy}).Send(ctx, srv.URL, nil, []byte(`{}`))
	if res.OK() || res.Err != "canceled" {
		t.Fatalf("result = %+v, want canceled", res)
	}
}

// A receiver that answers 200 and then streams without end costs the
// sender MaxResponseBytes: it hangs up instead of reading on, which the
// server sees as a failed write long before its 1 GiB are out.
func TestSendCapsResponseBody(t *testing.T) {
	const total = 1 << 30
	wrote := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("z", 32<<10))
		var n int64
		for n < total {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		wrote <- n
	}))
	t.Cleanup(srv.Close)
	res := NewSender(SenderOptions{Policy: testPolicy, MaxResponseBytes: 1024, Timeout: time.Minute}).
		Send(context.Background(), srv.URL, nil, []byte(`{}`))
	if !res.OK() {
		t.Fatalf("result = %+v, want OK", res)
	}
	if n := <-wrote; n >= total {
		t.Fatalf("the whole %d-byte response was read; want the sender to stop at its cap", n)
	}
}

func TestSendRefusesLoopbackURL(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	res := NewSender(SenderOptions{Policy: Policy{AllowHTTP: true}}).Send(context.Background(), srv.URL+"/?token=abc", nil, []byte(`{}`))
	if res.OK() || !res.Refused || res.Status != 0 || res.Err != "url: host is a loopback address" {
		t.Fatalf("result = %+v, want refused as loopback", res)
	}
	if hits.Load() != 0 {
		t.Fatal("refused server was hit")
	}
}

// "localhost" passes the URL check (it is a name) and is refused when the
// dialer sees the loopback address it resolves to: the same check stops a
// name whose DNS answer changes after validation.
func TestSendRefusesNameResolvingToLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if url == srv.URL {
		t.Fatalf("test server URL %q is not on 127.0.0.1", srv.URL)
	}
	policy := Policy{AllowHTTP: true}
	if err := policy.CheckURL(url); err != nil {
		t.Fatalf("CheckURL refused a host name statically: %v", err)
	}
	res := NewSender(SenderOptions{Policy: policy}).Send(context.Background(), url+"/?token=abc", nil, []byte(`{}`))
	if res.OK() || !res.Refused || res.Err != "destination refused: loopback address" {
		t.Fatalf("result = %+v, want refused at dial as loopback", res)
	}
	if hits.Load() != 0 {
		t.Fatal("refused server was hit")
	}
	// The same Sender setup with loopback allowed reaches it, so the
	// refusal above came from the policy and not from name resolution.
	res = NewSender(SenderOptions{Policy: testPolicy}).Send(context.Background(), url, nil, []byte(`{}`))
	if !res.OK() || hits.Load() != 1 {
		t.Fatalf("with AllowLoopback: result = %+v, hits = %d", res, hits.Load())
	}
}

// Proxy settings from the environment are ignored: through a proxy the
// address check would judge the proxy, not the destination. (An end-to-end
// test cannot show this on loopback: net/http never proxies localhost.)
func TestSenderUsesNoProxy(t *testing.T) {
	tr, ok := NewSender(SenderOptions{}).client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T", NewSender(SenderOptions{}).client.Transport)
	}
	if tr.Proxy != nil {
		t.Fatal("transport has a Proxy function")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatal("transport allows TLS below 1.2")
	}
}

func TestSendConnectionFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close() // nothing listens there any more
	res := NewSender(SenderOptions{Policy: testPolicy}).Send(context.Background(), url+"/?token=abc", nil, []byte(`{}`))
	if res.OK() || res.Refused || res.Status != 0 || res.Err == "" {
		t.Fatalf("result = %+v, want a connection failure", res)
	}
	if strings.Contains(res.Err, "token") {
		t.Fatalf("Err %q repeats the URL query", res.Err)
	}
}

// The body excerpt in Err never exceeds what MaxResponseBytes allows to be
// read, even below the 200 bytes Err could hold.
func TestSendErrExcerptWithinCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "0123456789abcdefghij")
	}))
	t.Cleanup(srv.Close)
	res := NewSender(SenderOptions{Policy: testPolicy, MaxResponseBytes: 8}).Send(context.Background(), srv.URL, nil, []byte(`{}`))
	if res.Status != http.StatusBadGateway || res.Err != "HTTP 502: 01234567" {
		t.Fatalf("result = %+v, want the first 8 bytes of the body", res)
	}
}
