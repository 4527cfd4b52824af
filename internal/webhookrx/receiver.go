// Package webhookrx is a webhook receiver that verifies deliveries with
// the Standard Webhooks reference library (not the plugin's own signing
// code) and de-duplicates them on webhook-id, as the spec asks receivers
// to. The integration tests and scripts/webhook-receiver use it.
package webhookrx

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Event is one verified delivery, as its payload says.
type Event struct {
	ID      string            `json:"webhook_id"`
	Type    string            `json:"type"`
	Seq     uint64            `json:"seq"`
	Client  string            `json:"client,omitempty"`
	Key     string            `json:"key,omitempty"`
	KeyID   string            `json:"key_id,omitempty"`
	Actor   map[string]string `json:"actor,omitempty"`
	Details map[string]string `json:"details,omitempty"`
	// Attempts counts the verified deliveries of this webhook-id.
	Attempts int `json:"attempts"`
}

type payload struct {
	Type string `json:"type"`
	Data struct {
		Seq     uint64            `json:"seq"`
		Client  string            `json:"client"`
		Key     string            `json:"key"`
		KeyID   string            `json:"key_id"`
		Actor   map[string]string `json:"actor"`
		Details map[string]string `json:"details"`
	} `json:"data"`
}

// Raw is a delivery as received, for tests that tamper with one.
type Raw struct {
	Header http.Header
	Body   []byte
}

// Receiver is an HTTP server on loopback.
type Receiver struct {
	URL string

	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	wh       []*standardwebhooks.Webhook
	down     bool
	delay    time.Duration
	huge     bool
	events   []*Event
	byID     map[string]*Event
	raws     []Raw
	rejected int
	hits     int
	onEvent  func(ev *Event, first bool)
}

// Start listens on addr ("127.0.0.1:0" for any port) and verifies with
// the given secrets ("whsec_..."): a delivery passes if any verifies it.
func Start(addr string, secrets ...string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Receiver{ln: ln, byID: map[string]*Event{}, URL: "http://" + ln.Addr().String() + "/hooks"}
	if err := r.SetSecrets(secrets...); err != nil {
		ln.Close()
		return nil, err
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// SetSecrets replaces the secrets deliveries are verified with.
func (r *Receiver) SetSecrets(secrets ...string) error {
	var whs []*standardwebhooks.Webhook
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return fmt.Errorf("secret: %w", err)
		}
		whs = append(whs, wh)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wh = whs
	return nil
}

// Close stops the server.
func (r *Receiver) Close() { r.srv.Close() }

// SetDown makes the receiver answer 503 to everything (true) or work.
func (r *Receiver) SetDown(down bool) { r.mu.Lock(); r.down = down; r.mu.Unlock() }

// SetDelay makes each answer wait d first.
func (r *Receiver) SetDelay(d time.Duration) { r.mu.Lock(); r.delay = d; r.mu.Unlock() }

// SetHuge makes each answer carry a body of hundreds of megabytes.
func (r *Receiver) SetHuge(huge bool) { r.mu.Lock(); r.huge = huge; r.mu.Unlock() }

// OnEvent calls f (outside the receiver's lock) for each verified
// delivery; first is false for a webhook-id already received.
func (r *Receiver) OnEvent(f func(ev *Event, first bool)) { r.mu.Lock(); r.onEvent = f; r.mu.Unlock() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	r.hits++
	down, delay, huge, whs := r.down, r.delay, r.huge, r.wh
	r.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay) // the slow receiver a test asks for
	}
	if err != nil || down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	verified := false
	for _, wh := range whs {
		if wh.Verify(body, req.Header) == nil {
			verified = true
			break
		}
	}
	if !verified {
		r.mu.Lock()
		r.rejected++
		r.mu.Unlock()
		http.Error(w, "signature verification failed", http.StatusUnauthorized)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.raws = append(r.raws, Raw{Header: req.Header.Clone(), Body: body})
	ev, seen := r.byID[id]
	if seen {
		ev.Attempts++
	} else {
		ev = &Event{ID: id, Type: p.Type, Seq: p.Data.Seq, Client: p.Data.Client, Key: p.Data.Key, KeyID: p.Data.KeyID, Actor: p.Data.Actor, Details: p.Data.Details, Attempts: 1}
		r.byID[id] = ev
		r.events = append(r.events, ev)
	}
	cb := r.onEvent
	copied := *ev
	r.mu.Unlock()
	if cb != nil {
		cb(&copied, !seen)
	}
	if huge {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 64<<10)
		for i := 0; i < 8192; i++ { // 512 MiB unless the sender hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Events returns the distinct verified events, in order of arrival.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, len(r.events))
	for i, e := range r.events {
		out[i] = *e
	}
	return out
}

// Raws returns every verified delivery as received.
func (r *Receiver) Raws() []Raw {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Raw(nil), r.raws...)
}

// Counts returns how many requests arrived and how many failed
// verification.
func (r *Receiver) Counts() (hits, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits, r.rejected
}
