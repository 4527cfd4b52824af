package logtree

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

const (
	storageKey    = "log/checkpoint/key"
	storageLatest = "log/checkpoint/latest"
)

// ErrEmpty is the error of a checkpoint asked of a tree with no entries.
var ErrEmpty = errors.New("the log has no verified entries to sign yet")

// Checkpoint is a signed statement of the tree: its size and root, in the
// C2SP tlog-checkpoint text, with two extension lines, the chain hash of
// the last entry ("chain <hex>") and the signing time ("time <RFC 3339>").
type Checkpoint struct {
	// Note is the signed checkpoint as an auditor keeps it.
	Note string `json:"note"`
	Size uint64 `json:"size"`
	// Root is the tree's root hash, base64 as in the note.
	Root      string    `json:"root"`
	ChainHead string    `json:"chain_head"`
	Time      time.Time `json:"time"`
}

// signingKey is the mount's checkpoint key, kept in Vault's storage
// (encrypted by the barrier) and never returned.
type signingKey struct {
	Origin string `json:"origin"`
	// Signer is the private key in note's format.
	Signer string `json:"signer"`
	// Verifier is the public key in note's format
	// (<origin>+<key hash>+<base64 key>).
	Verifier string `json:"verifier"`
}

func (t *Tree) key(ctx context.Context, s logical.Storage, create bool) (*signingKey, error) {
	entry, err := s.Get(ctx, storageKey)
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint key: %w", err)
	}
	if entry != nil {
		var k signingKey
		if err := entry.DecodeJSON(&k); err != nil {
			return nil, fmt.Errorf("decoding the checkpoint key: %w", err)
		}
		return &k, nil
	}
	if !create {
		return nil, nil
	}
	origin := t.origin()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, fmt.Errorf("making the checkpoint key: %w", err)
	}
	k := &signingKey{Origin: origin, Signer: skey, Verifier: vkey}
	if entry, err = logical.StorageEntryJSON(storageKey, k); err != nil {
		return nil, err
	}
	if err := s.Put(ctx, entry); err != nil {
		return nil, fmt.Errorf("storing the checkpoint key: %w", err)
	}
	return k, nil
}

// VerifierKey returns the public key checkpoints verify with, in note's
// verifier-key format, and the log's origin ("" until the first
// checkpoint made the key).
func (t *Tree) VerifierKey(ctx context.Context, s logical.Storage) (vkey, origin string, err error) {
	k, err := t.key(ctx, s, false)
	if err != nil || k == nil {
		return "", "", err
	}
	return k.Verifier, k.Origin, nil
}

// Latest returns the newest checkpoint, or nil before the first.
func (t *Tree) Latest(ctx context.Context, s logical.Storage) (*Checkpoint, error) {
	entry, err := s.Get(ctx, storageLatest)
	if err != nil {
		return nil, fmt.Errorf("reading the latest checkpoint: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	var cp Checkpoint
	if err := entry.DecodeJSON(&cp); err != nil {
		return nil, fmt.Errorf("decoding the latest checkpoint: %w", err)
	}
	return &cp, nil
}

// Sign signs the tree at its current size, unless the latest checkpoint
// has that size already, in which case that one is returned. A tree that
// stopped at a broken entry is signed only up to the entry before it.
func (t *Tree) Sign(ctx context.Context, s logical.Storage, now time.Time) (*Checkpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sign(ctx, s, now)
}

func (t *Tree) sign(ctx context.Context, s logical.Storage, now time.Time) (*Checkpoint, error) {
	st, err := t.State(ctx, s)
	if err != nil {
		return nil, err
	}
	if st.Size == 0 {
		return nil, ErrEmpty
	}
	latest, err := t.Latest(ctx, s)
	if err != nil {
		return nil, err
	}
	if latest != nil && latest.Size == st.Size {
		return latest, nil
	}
	k, err := t.key(ctx, s, true)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("loading the checkpoint key: %w", err)
	}
	root, err := t.Root(ctx, s, st.Size)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	text := string(log.Checkpoint{Origin: k.Origin, Size: st.Size, Hash: root[:]}.Marshal()) +
		"chain " + st.LastHash + "\n" +
		"time " + now.Format(time.RFC3339) + "\n"
	signed, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint: %w", err)
	}
	cp := &Checkpoint{Note: string(signed), Size: st.Size, Root: base64.StdEncoding.EncodeToString(root[:]), ChainHead: st.LastHash, Time: now}
	entry, err := logical.StorageEntryJSON(storageLatest, cp)
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, entry); err != nil {
		return nil, fmt.Errorf("storing the checkpoint: %w", err)
	}
	return cp, nil
}

// Step is the periodic work: grow the tree by up to budget entries, then
// sign it when the latest checkpoint is older than interval and the tree
// has grown since.
func (t *Tree) Step(ctx context.Context, s logical.Storage, budget int, interval time.Duration, now time.Time) (Progress, *Checkpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.grow(ctx, s, budget)
	if err != nil || p.Size == 0 {
		return p, nil, err
	}
	latest, err := t.Latest(ctx, s)
	if err != nil {
		return p, nil, err
	}
	if latest != nil && (latest.Size == p.Size || now.Sub(latest.Time) < interval) {
		return p, nil, nil
	}
	cp, err := t.sign(ctx, s, now)
	return p, cp, err
}
