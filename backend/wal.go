package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Crash safety (SPEC §4). A key change that adds or drops versions writes,
// in order: a WAL entry naming the HMACs added and dropped, the new index
// entries, the key record, the deletion of dropped index entries, then
// deletes the WAL entry. Verify only accepts an index entry whose key
// record holds a version with that HMAC, so a crash at any point leaves
// either the old state or the new one as far as verify can tell; the WAL
// rollback then deletes index entries that the key record never adopted.
//
// Lifecycle-log entries are appended after the commit, so a crash in the
// instant between the key write and the append leaves the right key state
// without its log entry (never an entry without the state).
const walKindIndex = "index"

// walRollbackMinAge leaves in-flight changes alone: only WAL entries older
// than this are treated as interrupted.
const walRollbackMinAge = 2 * time.Minute

type walIndex struct {
	Client string   `json:"client" mapstructure:"client"`
	Name   string   `json:"name" mapstructure:"name"`
	HMACs  []string `json:"hmacs" mapstructure:"hmacs"`
}

// commitHook lets tests inject a failure between the steps of commitKey.
type commitHook func(step string) error

// commitKey persists k after versions were added (added holds them) or
// dropped, keeping the HMAC index consistent. Callers hold the key's lock.
func (b *apikeysBackend) commitKey(ctx context.Context, s logical.Storage, k *Key, added []*KeyVersion) error {
	step := func(name string) error {
		if b.commitHook != nil {
			return b.commitHook(name)
		}
		return nil
	}
	dropped := k.trimVersions()
	var walID string
	if len(added) > 0 || len(dropped) > 0 {
		// The WAL names every index entry this change adds or drops, so a
		// rollback can delete whichever of them the key record ends up not
		// holding.
		w := walIndex{Client: k.Client, Name: k.Name, HMACs: append([]string(nil), dropped...)}
		for _, v := range added {
			w.HMACs = append(w.HMACs, v.HMAC)
		}
		id, err := framework.PutWAL(ctx, s, walKindIndex, &w)
		if err != nil {
			return fmt.Errorf("writing WAL: %w", err)
		}
		walID = id
		if err := step("wal"); err != nil {
			return err
		}
		for _, v := range added {
			if err := b.putIndex(ctx, s, v.HMAC, indexEntry{Client: k.Client, Name: k.Name, KeyID: k.KeyID, Version: v.Version}); err != nil {
				return fmt.Errorf("writing key index: %w", err)
			}
		}
		if err := step("index"); err != nil {
			return err
		}
	}
	if err := b.putKey(ctx, s, k); err != nil {
		return err
	}
	if err := step("key"); err != nil {
		return err
	}
	for _, h := range dropped {
		if err := s.Delete(ctx, indexStorageKey(h)); err != nil {
			return fmt.Errorf("deleting index entry of a dropped version: %w", err)
		}
	}
	if walID != "" {
		if err := framework.DeleteWAL(ctx, s, walID); err != nil {
			return fmt.Errorf("deleting WAL: %w", err)
		}
	}
	return nil
}

// walRollback undoes an interrupted commitKey: index entries whose HMAC the
// key record does not hold are deleted.
func (b *apikeysBackend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind != walKindIndex {
		return fmt.Errorf("unknown WAL kind %q", kind)
	}
	var w walIndex
	if err := mapstructure.Decode(data, &w); err != nil {
		return err
	}
	defer b.lockKey(w.Client, w.Name)()
	k, err := b.getKey(ctx, req.Storage, w.Client, w.Name)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	if k != nil {
		for _, v := range k.Versions {
			held[v.HMAC] = true
		}
	}
	for _, h := range w.HMACs {
		if held[h] {
			continue
		}
		if err := req.Storage.Delete(ctx, indexStorageKey(h)); err != nil {
			return err
		}
		b.logger.Info("rolled back an index entry of an interrupted key change", "client", w.Client, "key", w.Name)
	}
	return nil
}
