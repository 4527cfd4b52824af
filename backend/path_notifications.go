package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const pathNotificationsConfigHelpSyn = `Configure webhook delivery.`
const pathNotificationsConfigHelpDesc = `
retry_window bounds how long a failed delivery is retried (exponential
backoff with jitter, from 5s up to 1h between attempts) before it is
dead-lettered and a webhook_dead_lettered alert is raised (default 24h).
timeout bounds one attempt (default 10s); at most 64 KiB of a response is
read.

Outbound safety: URLs must be https, and every address a delivery connects
to is checked after DNS resolution. Link-local addresses (169.254.0.0/16,
fe80::/10, which hold cloud metadata services), other metadata addresses,
unspecified and multicast addresses are always refused. allow_private admits
private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7);
allow_loopback admits 127/8 and ::1; allow_http admits http:// URLs. Keep all
three off outside tests unless the receiver really sits there.

vault_events also publishes every event to Vault's event bus, for
"vault events subscribe 'apikeys/*'" (best effort, no retries). Turn it on
only where Vault runs with the events.alpha1 experiment (-experiment
events.alpha1): Vault 1.13 without it crashes when a plugin publishes an
event (a nil event sender in Vault itself), and a plugin cannot tell
whether the experiment is on. Off by default.
`
const pathDeliveriesHelpSyn = `List recent webhook deliveries, retries waiting and dead letters.`
const pathDeliveriesHelpDesc = `
For each endpoint (or the one named): the position in the lifecycle log
delivered up to and how many entries are still ahead of it, the latest
attempts (newest first) with status and latency, deliveries waiting for a
retry and dead-lettered ranges, which notifications/endpoints/<name>/replay
sends again.
`

func (b *apikeysBackend) pathNotifications() []*framework.Path {
	return append([]*framework.Path{
		{
			Pattern:      "notifications/config$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "notifications-configuration"},
			Fields: map[string]*framework.FieldSchema{
				"retry_window":   {Type: framework.TypeDurationSecond, Description: "How long a failed delivery is retried before it is dead-lettered (default 24h; 1m to 720h)."},
				"timeout":        {Type: framework.TypeDurationSecond, Description: "Bound of one delivery attempt (default 10s; 1s to 60s)."},
				"allow_http":     {Type: framework.TypeBool, Description: "Accept http:// URLs (default false)."},
				"allow_loopback": {Type: framework.TypeBool, Description: "Accept loopback destinations, 127.0.0.0/8 and ::1 (default false)."},
				"allow_private":  {Type: framework.TypeBool, Description: "Accept private-network destinations (default false)."},
				"vault_events":   {Type: framework.TypeBool, Description: "Also publish every event to Vault's event bus (default false). Only where Vault runs with -experiment events.alpha1: Vault 1.13 without it crashes when a plugin publishes."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathNotificationsConfigRead, Responses: okResponse(notificationsConfigResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathNotificationsConfigWrite, Responses: okResponse(notificationsConfigResponseFields)},
			},
			HelpSynopsis:    pathNotificationsConfigHelpSyn,
			HelpDescription: pathNotificationsConfigHelpDesc,
		},
		{
			Pattern:      "notifications/deliveries/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "notification-deliveries"},
			Fields: map[string]*framework.FieldSchema{
				"endpoint": {Type: framework.TypeString, Description: "Only this endpoint."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathDeliveriesRead, Responses: okResponse(map[string]*framework.FieldSchema{
					"endpoints": field(framework.TypeMap, "Delivery state by endpoint: cursor, backlog, delivered, dead_lettered, failures, recent, pending, dead."),
					"head":      field(framework.TypeInt, "Sequence number of the newest lifecycle-log entry."),
				})},
			},
			HelpSynopsis:    pathDeliveriesHelpSyn,
			HelpDescription: pathDeliveriesHelpDesc,
		},
	}, b.pathNotificationEndpoints()...)
}

var notificationsConfigResponseFields = map[string]*framework.FieldSchema{
	"retry_window":   field(framework.TypeInt, "Retry window in seconds."),
	"timeout":        field(framework.TypeInt, "Attempt timeout in seconds."),
	"allow_http":     field(framework.TypeBool, "Whether http:// URLs are accepted."),
	"allow_loopback": field(framework.TypeBool, "Whether loopback destinations are accepted."),
	"allow_private":  field(framework.TypeBool, "Whether private-network destinations are accepted."),
	"vault_events":   field(framework.TypeBool, "Whether events are published to Vault's event bus."),
}

func notificationsConfigData(c outbox.Config) map[string]interface{} {
	return map[string]interface{}{
		"retry_window": int64(c.RetryWindow.Seconds()), "timeout": int64(c.Timeout.Seconds()),
		"allow_http": c.AllowHTTP, "allow_loopback": c.AllowLoopback, "allow_private": c.AllowPrivate, "vault_events": c.VaultEvents,
	}
}

func (b *apikeysBackend) pathNotificationsConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	c, err := b.outbox.Config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: notificationsConfigData(c)}, nil
}

func (b *apikeysBackend) pathNotificationsConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	c, err := b.outbox.Config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if raw, ok := d.GetOk("retry_window"); ok {
		v := time.Duration(raw.(int)) * time.Second
		if v < time.Minute || v > 720*time.Hour {
			return nil, userErrorf("retry_window must be between 1m and 720h")
		}
		c.RetryWindow = v
	}
	if raw, ok := d.GetOk("timeout"); ok {
		v := time.Duration(raw.(int)) * time.Second
		if v < time.Second || v > time.Minute {
			return nil, userErrorf("timeout must be between 1s and 60s")
		}
		c.Timeout = v
	}
	for name, dst := range map[string]*bool{"allow_http": &c.AllowHTTP, "allow_loopback": &c.AllowLoopback, "allow_private": &c.AllowPrivate, "vault_events": &c.VaultEvents} {
		if raw, ok := d.GetOk(name); ok {
			*dst = raw.(bool)
		}
	}
	if err := b.outbox.PutConfig(ctx, req.Storage, c); err != nil {
		return nil, err
	}
	data := notificationsConfigData(c)
	ev := eventFromRequest(req, eventlog.NotificationsConfigUpdated)
	ev.Details = map[string]string{}
	for k, v := range data {
		ev.Details[k] = fmt.Sprint(v)
	}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathDeliveriesRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	only := strings.TrimSpace(d.Get("endpoint").(string))
	if only != "" {
		if err := record.ValidateName("endpoint", only); err != nil {
			return nil, userErrorf("%s", err.Error())
		}
	}
	head, err := b.log.Head(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	eps, err := b.outbox.Endpoints(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	for _, ep := range eps {
		if only != "" && ep.Name != only {
			continue
		}
		st, err := b.outbox.State(ctx, req.Storage, ep.Name)
		if err != nil {
			return nil, err
		}
		if st == nil {
			st = &outbox.State{Cursor: head.Seq}
		}
		out[ep.Name] = deliveryStateData(st, head.Seq)
	}
	if only != "" && len(out) == 0 {
		return nil, userErrorf("endpoint %q does not exist; list endpoints with: vault list <mount>/notifications/endpoints", only)
	}
	return &logical.Response{Data: map[string]interface{}{"endpoints": out, "head": head.Seq}}, nil
}

func deliveryStateData(st *outbox.State, head uint64) map[string]interface{} {
	recent := make([]map[string]interface{}, 0, len(st.Recent))
	for i := len(st.Recent) - 1; i >= 0; i-- {
		a := st.Recent[i]
		item := map[string]interface{}{
			"seq": a.Seq, "webhook_id": a.ID, "type": a.Type, "at": a.At.Format(time.RFC3339Nano), "attempt": a.Attempt,
			"status": a.Status, "latency_ms": float64(a.Latency.Microseconds()) / 1000, "outcome": a.Outcome,
		}
		if a.Error != "" {
			item["error"] = a.Error
		}
		recent = append(recent, item)
	}
	pending := make([]map[string]interface{}, 0, len(st.Pending))
	for _, p := range st.Pending {
		pending = append(pending, map[string]interface{}{
			"seq": p.Seq, "attempts": p.Attempts, "first_at": p.FirstAt.Format(time.RFC3339), "next_at": p.NextAt.Format(time.RFC3339), "last_error": p.LastError,
		})
	}
	dead := make([]map[string]interface{}, 0, len(st.Dead))
	for _, x := range st.Dead {
		dead = append(dead, map[string]interface{}{"from_seq": x.From, "to_seq": x.To, "count": x.Count, "at": x.At.Format(time.RFC3339), "last_error": x.LastError})
	}
	backlog := uint64(0)
	if head > st.Cursor {
		backlog = head - st.Cursor
	}
	return map[string]interface{}{
		"cursor": st.Cursor, "backlog": backlog, "delivered": st.Delivered, "dead_lettered": st.Deadlettered, "failures": st.Failures,
		"recent": recent, "pending": pending, "dead": dead,
	}
}
