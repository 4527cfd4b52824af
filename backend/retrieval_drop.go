package backend

import (
	"context"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Turning a role's retrievable off (role.RetrievalCutoff) stops key reads
// at once; the stored plaintexts themselves are dropped by the governance
// sweep (governance.Runtime.Sweep), which visits every key in bounded batches
// from a cursor kept in storage, so the drop survives restarts and costs a
// tick no more than its batch. A drop is logged as key.plaintext_dropped.

// unreadableSecrets lists the versions of k that still store a plaintext
// no key read may return: all of them when role forbids retrieval for
// client c, else those created at or before the role's retrieval cutoff.
// forbid reports the first case. An unknown role or client decides nothing.
func unreadableSecrets(k *record.Key, role *record.Role, c *record.Client) (versions []*record.KeyVersion, forbid bool) {
	if role == nil || c == nil {
		return nil, false
	}
	forbid = role.ForbidsRetrieval(c)
	for _, v := range k.Versions {
		if v.Secret != "" && (forbid || !role.Readable(v)) {
			versions = append(versions, v)
		}
	}
	return versions, forbid
}

// dropUnreadablePlaintext drops what unreadableSecrets finds on key k (as
// read by the sweep, without locks): the key is re-read under its locks and
// changed only if it still stores such plaintext.
func (b *apikeysBackend) dropUnreadablePlaintext(ctx context.Context, s logical.Storage, roleOf func(string) (*record.Role, error), clientOf func(string) (*record.Client, error), k *record.Key) error {
	role, err := roleOf(k.Role)
	if err != nil {
		return err
	}
	c, err := clientOf(k.Client)
	if err != nil {
		return err
	}
	if drop, _ := unreadableSecrets(k, role, c); len(drop) == 0 {
		return nil
	}
	defer b.locks.lockKey(k.Client, k.Name)()
	k, err = b.getKey(ctx, s, k.Client, k.Name)
	if err != nil || k == nil {
		return err
	}
	// The role is read again too: the memo may predate a change.
	if role, err = b.getRole(ctx, s, k.Role); err != nil {
		return err
	}
	drop, forbid := unreadableSecrets(k, role, c)
	if len(drop) == 0 {
		return nil
	}
	var dropped []int
	for _, v := range drop {
		v.Secret = ""
		dropped = append(dropped, v.Version)
	}
	ev := eventFor(nil, eventlog.KeyPlaintextDropped, k, 0)
	ev.Details = map[string]string{"versions": joinInts(dropped), "retrieval_cutoff": role.RetrievalCutoff.Format(time.RFC3339Nano)}
	if forbid {
		// The role no longer lets this client's keys be read back at
		// all: the key keeps no plaintext from now on (as rotation does).
		k.StopRetrieval()
		ev.Details["retrievable"] = strconv.FormatBool(false)
	}
	return b.commitKey(ctx, s, k, nil, ev)
}
