package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The lifecycle log (SPEC §7) is append-only and hash-chained. Vault's audit
// devices record API calls; this log also records background work (rotation,
// retirement, expiry) that no audit device sees.
const (
	storageLogEntries = "log/entries/"
	storageLogHead    = "log/head"
)

// Event types.
const (
	eventConfigUpdated   = "config.updated"
	eventClientWritten   = "client.written"
	eventClientDeleted   = "client.deleted"
	eventClientLocked    = "client.locked"
	eventClientUnlocked  = "client.unlocked"
	eventRoleWritten     = "role.written"
	eventRoleDeleted     = "role.deleted"
	eventKeyIssued       = "key.issued"
	eventKeyRotated      = "key.rotated"
	eventKeyStaged       = "key.staged"
	eventKeyPromoted     = "key.promoted"
	eventKeyRolledBack   = "key.rolled_back"
	eventKeyRetired      = "key.retired"
	eventKeyRevoked      = "key.revoked"
	eventKeyExpired      = "key.expired"
	eventKeyDeleted      = "key.deleted"
	eventRetirementWaits = "key.retirement_deferred"
	eventAlert           = "alert.raised"
	eventApproval        = "request.approved"
	eventLeak            = "leak.reported"
	actorSystem          = "system"
)

// Event is one lifecycle-log entry. It holds only non-secret identifiers.
type Event struct {
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     record.Actor      `json:"actor"`
	RequestID string            `json:"request_id,omitempty"`
	Client    string            `json:"client,omitempty"`
	Key       string            `json:"key,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	Role      string            `json:"role,omitempty"`
	Version   int               `json:"version,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// storedEvent is the record in storage. Event keeps its exact bytes so the
// hash is recomputed over what was written, not over a re-encoding.
type storedEvent struct {
	Seq   uint64          `json:"seq"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

type logHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func actorFromRequest(req *logical.Request) record.Actor {
	if req == nil {
		return record.Actor{Type: actorSystem}
	}
	a := record.Actor{EntityID: req.EntityID, DisplayName: req.DisplayName, Accessor: req.ClientTokenAccessor}
	if req.EntityID != "" {
		a.Type = "entity"
	} else {
		a.Type = "token"
	}
	return a
}

// eventFromRequest starts an event attributed to the request's caller.
func eventFromRequest(req *logical.Request, typ string) Event {
	return Event{Type: typ, Actor: actorFromRequest(req), RequestID: req.ID}
}

// systemEvent starts an event for background work.
func systemEvent(typ string) Event {
	return Event{Type: typ, Actor: record.Actor{Type: actorSystem}}
}

func logEntryKey(seq uint64) string { return fmt.Sprintf("%s%020d", storageLogEntries, seq) }

func readLogHead(ctx context.Context, s logical.Storage) (logHead, error) {
	head := logHead{Hash: hashchain.Genesis}
	entry, err := s.Get(ctx, storageLogHead)
	if err != nil {
		return head, fmt.Errorf("reading log head: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&head); err != nil {
			return head, fmt.Errorf("decoding log head: %w", err)
		}
	}
	return head, nil
}

// appendEvent links ev to the chain and stores it. The entry is written
// before the head, so a crash in between leaves an entry the head does not
// count, which the next append overwrites.
func (b *apikeysBackend) appendEvent(ctx context.Context, s logical.Storage, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = b.clock.Now()
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return b.appendEventBody(ctx, s, body)
}

// appendEventBody appends an encoded event (see appendEvent).
func (b *apikeysBackend) appendEventBody(ctx context.Context, s logical.Storage, body []byte) error {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	head, err := readLogHead(ctx, s)
	if err != nil {
		return err
	}
	rec := storedEvent{Seq: head.Seq + 1, Prev: head.Hash, Event: body}
	rec.Hash = hashchain.Hash(rec.Seq, rec.Prev, body)
	entry, err := logical.StorageEntryJSON(logEntryKey(rec.Seq), rec)
	if err != nil {
		return err
	}
	if err := putEntry(ctx, s, entry, "log entry"); err != nil {
		return err
	}
	headEntry, err := logical.StorageEntryJSON(storageLogHead, logHead{Seq: rec.Seq, Hash: rec.Hash})
	if err != nil {
		return err
	}
	if err := s.Put(ctx, headEntry); err != nil {
		return fmt.Errorf("writing log head: %w", err)
	}
	return nil
}

// readLogEntry returns the stored entry with sequence number seq, or nil.
func readLogEntry(ctx context.Context, s logical.Storage, seq uint64) (*storedEvent, error) {
	entry, err := s.Get(ctx, logEntryKey(seq))
	if err != nil || entry == nil {
		return nil, err
	}
	var rec storedEvent
	if err := entry.DecodeJSON(&rec); err != nil {
		return nil, fmt.Errorf("decoding log entry %d: %w", seq, err)
	}
	return &rec, nil
}

// verifyLog recomputes the whole chain from storage.
func (b *apikeysBackend) verifyLog(ctx context.Context, s logical.Storage) (hashchain.Result, error) {
	head, err := readLogHead(ctx, s)
	if err != nil {
		return hashchain.Result{}, err
	}
	v := hashchain.NewVerifier()
	for seq := uint64(1); seq <= head.Seq; seq++ {
		entry, err := s.Get(ctx, logEntryKey(seq))
		if err != nil {
			return hashchain.Result{}, err
		}
		if entry == nil {
			v.Fail(seq, fmt.Sprintf("entry %d is missing", seq))
			break
		}
		var rec storedEvent
		if err := entry.DecodeJSON(&rec); err != nil {
			// An entry that no longer decodes was altered.
			v.Fail(seq, fmt.Sprintf("entry %d is not readable", seq))
			break
		}
		v.Add(hashchain.Link{Seq: rec.Seq, Prev: rec.Prev, Hash: rec.Hash, Body: rec.Event})
	}
	return v.Finish(head.Seq, head.Hash), nil
}
