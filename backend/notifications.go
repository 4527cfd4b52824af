package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hashicorp/vault/sdk/logical"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// vaultEventPrefix namespaces the event types this plugin publishes on
// Vault's event bus ("vault events subscribe 'apikeys/*'").
const vaultEventPrefix = "apikeys/"

// newOutbox builds the mount's delivery engine (outbox package).
func (b *apikeysBackend) newOutbox(send outbox.SendFunc) *outbox.Engine {
	return outbox.New(outbox.Deps{
		Clock:        b.clock,
		Log:          b.log,
		Logger:       b.logger,
		OwnerOf:      b.ownerOf,
		DeadLettered: b.deadLettered,
		Respond:      b.respondToAlertID,
		Publish:      b.publishVaultEvent,
		Send:         send,
	})
}

// startOutbox runs delivery on this node if it may write storage; Vault
// initializes the mount again where it becomes active.
func (b *apikeysBackend) startOutbox(s logical.Storage) {
	if !b.runOutbox || !b.writeSafe() {
		return // unit tests step the engine themselves
	}
	b.outbox.Start(s)
}

// ensureOutbox starts the outbox where this node may write and it does
// not run: after a failed start, or on a node that became active.
func (b *apikeysBackend) ensureOutbox() {
	if b.runOutbox && !b.outbox.Running() {
		b.startOutbox(b.storage)
	}
}

// respondToAlertID applies the response policies to a raised alert; the
// outbox calls it once the alert's log entry is written, so it acts on
// alerts raised by background work and by any node alike.
func (b *apikeysBackend) respondToAlertID(ctx context.Context, s logical.Storage, id string) error {
	a, err := getAlert(ctx, s, id)
	if err != nil || a == nil {
		return err // an alert pruned since needs no response
	}
	return b.respondToAlert(ctx, s, a)
}

func (b *apikeysBackend) ownerOf(ctx context.Context, s logical.Storage, client string) (string, error) {
	c, err := b.getClient(ctx, s, client)
	if err != nil || c == nil {
		return "", err
	}
	return c.Owner, nil
}

// deadLettered raises the alert of deliveries to an endpoint given up on.
// The alert names the endpoint, which therefore is not sent it.
func (b *apikeysBackend) deadLettered(ctx context.Context, s logical.Storage, endpoint string, d outbox.Dead) error {
	return b.raiseAlert(ctx, s, &record.Alert{
		Type:     record.AlertWebhookDeadLettered,
		Severity: record.SeverityWarning,
		Message: fmt.Sprintf("%d deliveries to webhook endpoint %q were given up after the retry window (log entries %d-%d); replay them with notifications/endpoints/%s/replay dead_letters=true",
			d.Count, endpoint, d.From, d.To, endpoint),
		Details: map[string]string{
			"endpoint": endpoint, "count": strconv.Itoa(d.Count),
			"from_seq": strconv.FormatUint(d.From, 10), "to_seq": strconv.FormatUint(d.To, 10), "last_error": d.LastError,
		},
	})
}

// publishVaultEvent sends a message to Vault's event bus. Vault 1.13 only
// has one when started with the events.alpha1 experiment; the engine calls
// this only where notifications/config vault_events is on.
func (b *apikeysBackend) publishVaultEvent(ctx context.Context, m *outbox.Message) error {
	var body struct {
		Data map[string]interface{} `json:"data"`
	}
	if err := json.Unmarshal(m.Body, &body); err != nil {
		return err
	}
	meta, err := structpb.NewStruct(body.Data)
	if err != nil {
		return err
	}
	return b.SendEvent(ctx, logical.EventType(vaultEventPrefix+m.Type), &logical.EventData{
		Id: m.ID, Metadata: meta, Note: m.Type,
	})
}
