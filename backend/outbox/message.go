package outbox

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Message is one event as endpoints and Vault's event bus receive it, made
// from a lifecycle-log entry. The log holds only non-secret identifiers,
// and a message repeats only those.
type Message struct {
	// ID is the webhook-id: stable across retries, replays and endpoints.
	ID   string
	Seq  uint64
	Type string
	Time time.Time
	// Severity is the alert's for alerts, info for everything else.
	Severity string
	Client   string
	// Endpoint is set on an alert about an endpoint's deliveries, which
	// that endpoint is not sent (it could only fail again).
	Endpoint string
	// AlertID is set on alert.* messages.
	AlertID string
	// Body is the JSON payload.
	Body []byte
}

// payload is the body of a delivery, shaped as Standard Webhooks suggests:
// type, timestamp, data.
type payload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	Seq       uint64            `json:"seq"`
	Event     string            `json:"event"`
	Actor     payloadActor      `json:"actor"`
	RequestID string            `json:"request_id,omitempty"`
	Client    string            `json:"client,omitempty"`
	Key       string            `json:"key,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	Role      string            `json:"role,omitempty"`
	Version   int               `json:"version,omitempty"`
	Severity  string            `json:"severity"`
	Details   map[string]string `json:"details,omitempty"`
}

// payloadActor leaves out the token accessor: Vault's audit devices HMAC
// it, and a receiver has no use for it.
type payloadActor struct {
	Type        string `json:"type"`
	EntityID    string `json:"entity_id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// TypeOf is the event type an entry is sent as: its log type, except that
// an alert is "alert.<alert type>" so endpoints can select alert kinds.
func TypeOf(ev *eventlog.Event) string {
	if ev.Type == eventlog.AlertRaised && ev.Details["type"] != "" {
		return "alert." + ev.Details["type"]
	}
	return ev.Type
}

// MessageID is the webhook-id of the entry with hash h.
func MessageID(h string) string {
	if len(h) > 32 {
		h = h[:32]
	}
	return "msg_" + h
}

// NewMessage makes the message of a stored log entry.
func NewMessage(e *eventlog.Entry) (*Message, error) {
	var ev eventlog.Event
	if err := json.Unmarshal(e.Event, &ev); err != nil {
		return nil, fmt.Errorf("decoding log entry %d: %w", e.Seq, err)
	}
	m := &Message{ID: MessageID(e.Hash), Seq: e.Seq, Type: TypeOf(&ev), Time: ev.Time, Severity: record.SeverityInfo, Client: ev.Client}
	if ev.Type == eventlog.AlertRaised {
		if sev := ev.Details["severity"]; sev != "" {
			m.Severity = sev
		}
		m.AlertID = ev.Details["alert_id"]
		m.Endpoint = ev.Details["endpoint"]
	}
	body, err := json.Marshal(payload{
		Type:      m.Type,
		Timestamp: ev.Time,
		Data: payloadData{
			Seq: e.Seq, Event: ev.Type, RequestID: ev.RequestID,
			Actor:  payloadActor{Type: ev.Actor.Type, EntityID: ev.Actor.EntityID, DisplayName: ev.Actor.DisplayName},
			Client: ev.Client, Key: ev.Key, KeyID: ev.KeyID, Role: ev.Role, Version: ev.Version,
			Severity: m.Severity, Details: ev.Details,
		},
	})
	if err != nil {
		return nil, err
	}
	m.Body = body
	return m, nil
}
