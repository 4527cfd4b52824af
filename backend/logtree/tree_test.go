package logtree

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	ctx  context.Context
	s    logical.Storage
	log  *eventlog.Log
	tree *Tree
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), s: &logical.InmemStorage{}, log: eventlog.New(clock.NewFake(t0), 512<<10)}
	f.tree = New(f.log, func() string { return "vault-apikeys/test" })
	f.add(t, n)
	return f
}

func (f *fixture) add(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ev := eventlog.Event{Type: eventlog.KeyRotated, Actor: record.Actor{Type: "system"}, Client: "svc", Key: "k", Version: i}
		if err := f.log.Append(f.ctx, f.s, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// leaves computes every leaf hash from the stored entries, as an auditor
// holding the entries would.
func (f *fixture) leaves(t *testing.T, n uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for seq := uint64(1); seq <= n; seq++ {
		e, err := f.log.Entry(f.ctx, f.s, seq)
		if err != nil || e == nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
		raw, _ := hex.DecodeString(e.Hash)
		out = append(out, rfc6962.DefaultHasher.HashLeaf(raw))
	}
	return out
}

// naiveRoot is RFC 9162's MTH by its recursive definition, independent of
// the library the tree uses.
func naiveRoot(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := naiveRoot(leaves[:k]), naiveRoot(leaves[k:])
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

func proofBytes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func TestGrowInStepsMatchesTheRFCTreeAndProves(t *testing.T) {
	f := newFixture(t, 300)
	for _, budget := range []int{1, 7, 100, 1000} {
		p, err := f.tree.Grow(f.ctx, f.s, budget)
		if err != nil || p.BrokenAt != 0 {
			t.Fatalf("grow: %+v %v", p, err)
		}
	}
	st, _ := f.tree.State(f.ctx, f.s)
	if st.Size != 300 {
		t.Fatalf("size after growing = %d, want 300", st.Size)
	}
	leaves := f.leaves(t, 300)
	for _, size := range []uint64{1, 2, 3, 64, 255, 256, 257, 300} {
		root, err := f.tree.Root(f.ctx, f.s, size)
		if err != nil || !bytesEqual(root[:], naiveRoot(leaves[:size])) {
			t.Fatalf("root of %d = %x, %v; want %x", size, root, err, naiveRoot(leaves[:size]))
		}
		for _, seq := range []uint64{1, size / 2, size} {
			if seq == 0 {
				continue
			}
			p, err := f.tree.Inclusion(f.ctx, f.s, seq, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, seq-1, size, leaves[seq-1], proofBytes(p), root[:]); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", seq, size, err)
			}
		}
		for _, from := range []uint64{1, size / 3, size} {
			if from == 0 {
				continue
			}
			old, _ := f.tree.Root(f.ctx, f.s, from)
			p, err := f.tree.Consistency(f.ctx, f.s, from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, proofBytes(p), old[:], root[:]); err != nil {
				t.Fatalf("consistency %d -> %d: %v", from, size, err)
			}
		}
	}
	if _, err := f.tree.Inclusion(f.ctx, f.s, 1, 301); !errors.Is(err, ErrBeyondTree) {
		t.Fatalf("a proof beyond the tree: %v", err)
	}
}

// countingStorage counts reads, so a test can show growth reads only the
// new entries.
type countingStorage struct {
	logical.Storage
	gets map[string]int
}

func (c *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	prefix := key
	if i := strings.LastIndex(key, "/"); i >= 0 {
		prefix = key[:i+1]
	}
	c.gets[prefix]++
	return c.Storage.Get(ctx, key)
}

func TestGrowReadsOnlyNewEntries(t *testing.T) {
	f := newFixture(t, 5000)
	if _, err := f.tree.Grow(f.ctx, f.s, 10000); err != nil {
		t.Fatal(err)
	}
	f.add(t, 10)
	cs := &countingStorage{Storage: f.s, gets: map[string]int{}}
	p, err := f.tree.Grow(f.ctx, cs, 10000)
	if err != nil || p.Added != 10 || p.Size != 5010 {
		t.Fatalf("grow: %+v %v", p, err)
	}
	if cs.gets["log/entries/"] != 10 || cs.gets["log/tree/hashes/"] > 2 {
		t.Fatalf("growing by 10 entries read %v", cs.gets)
	}
}

func TestGrowStopsAtABrokenEntry(t *testing.T) {
	for name, tamper := range map[string]func(t *testing.T, f *fixture){
		"altered body": func(t *testing.T, f *fixture) {
			e, _ := f.log.Entry(f.ctx, f.s, 15)
			e.Event = json.RawMessage(strings.Replace(string(e.Event), `"svc"`, `"evil"`, 1))
			put(t, f, 15, e)
		},
		"missing entry": func(t *testing.T, f *fixture) {
			if err := f.s.Delete(f.ctx, fmt.Sprintf("log/entries/%020d", 15)); err != nil {
				t.Fatal(err)
			}
		},
		"reordered": func(t *testing.T, f *fixture) {
			a, _ := f.log.Entry(f.ctx, f.s, 15)
			b, _ := f.log.Entry(f.ctx, f.s, 16)
			put(t, f, 15, b)
			put(t, f, 16, a)
		},
		"unreadable": func(t *testing.T, f *fixture) {
			if err := f.s.Put(f.ctx, &logical.StorageEntry{Key: fmt.Sprintf("log/entries/%020d", 15), Value: []byte("{")}); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 10)
			if _, err := f.tree.Grow(f.ctx, f.s, 100); err != nil {
				t.Fatal(err)
			}
			f.add(t, 10)
			tamper(t, f)
			p, err := f.tree.Grow(f.ctx, f.s, 100)
			if err != nil || p.BrokenAt != 15 || p.Size != 14 || p.Reason == "" {
				t.Fatalf("grow over a broken entry: %+v %v", p, err)
			}
			// It stays stopped, and checkpoints do not pass it.
			cp, err := f.tree.Sign(f.ctx, f.s, t0)
			if err != nil || cp.Size != 14 {
				t.Fatalf("checkpoint after the break: %+v %v", cp, err)
			}
		})
	}
	t.Run("head moved back", func(t *testing.T) {
		f := newFixture(t, 10)
		if _, err := f.tree.Grow(f.ctx, f.s, 100); err != nil {
			t.Fatal(err)
		}
		e, _ := f.log.Entry(f.ctx, f.s, 8)
		head, _ := logical.StorageEntryJSON("log/head", eventlog.Head{Seq: 8, Hash: e.Hash})
		if err := f.s.Put(f.ctx, head); err != nil {
			t.Fatal(err)
		}
		p, err := f.tree.Grow(f.ctx, f.s, 100)
		if err != nil || p.BrokenAt != 9 {
			t.Fatalf("grow after truncation: %+v %v", p, err)
		}
	})
}

func put(t *testing.T, f *fixture, seq uint64, e *eventlog.Entry) {
	t.Helper()
	entry, _ := logical.StorageEntryJSON(fmt.Sprintf("log/entries/%020d", seq), e)
	if err := f.s.Put(f.ctx, entry); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointsVerifyWithTheC2SPFormat(t *testing.T) {
	f := newFixture(t, 0)
	if _, err := f.tree.Sign(f.ctx, f.s, t0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("checkpoint of an empty log: %v", err)
	}
	f.add(t, 20)
	p, cp, err := f.tree.Step(f.ctx, f.s, 100, time.Hour, t0)
	if err != nil || cp == nil || cp.Size != 20 || p.Size != 20 {
		t.Fatalf("first step: %+v %+v %v", p, cp, err)
	}
	vkey, origin, err := f.tree.VerifierKey(f.ctx, f.s)
	if err != nil || origin != "vault-apikeys/test" {
		t.Fatalf("verifier key: %q %q %v", vkey, origin, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	parsed, ext, _, err := log.ParseCheckpoint([]byte(cp.Note), origin, v)
	if err != nil || parsed.Size != 20 || base64.StdEncoding.EncodeToString(parsed.Hash) != cp.Root {
		t.Fatalf("parsing the checkpoint: %+v %v", parsed, err)
	}
	if want := "chain " + cp.ChainHead + "\ntime 2026-05-01T12:00:00Z\n"; string(ext) != want {
		t.Fatalf("extension lines %q, want %q", ext, want)
	}
	// Within the interval, growth is not signed; after it, it is.
	f.add(t, 5)
	if _, cp, err := f.tree.Step(f.ctx, f.s, 100, time.Hour, t0.Add(30*time.Minute)); err != nil || cp != nil {
		t.Fatalf("step within the interval signed %+v %v", cp, err)
	}
	if _, cp, err := f.tree.Step(f.ctx, f.s, 100, time.Hour, t0.Add(time.Hour)); err != nil || cp == nil || cp.Size != 25 {
		t.Fatalf("step after the interval: %+v %v", cp, err)
	}
	// Another key does not verify it.
	_, other, _ := note.GenerateKey(nil, origin)
	ov, _ := note.NewVerifier(other)
	latest, _ := f.tree.Latest(f.ctx, f.s)
	if _, _, _, err := log.ParseCheckpoint([]byte(latest.Note), origin, ov); err == nil {
		t.Fatal("a checkpoint verified with another key")
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestProofsReadLogarithmicallyManyPages: a proof's size and the hash
// pages it reads grow with log2 of the tree, not with the tree.
func TestProofsReadLogarithmicallyManyPages(t *testing.T) {
	// 20,000 entries keep their tree hashes in 157 pages: a proof that
	// read pages in proportion to the tree would read far more than
	// 2 log2(N).
	const n, log2 = 20000, 15 // 2^15 > 20,000
	f := newFixture(t, n)
	if _, err := f.tree.Grow(f.ctx, f.s, n); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		prove func(s logical.Storage) ([]tlog.Hash, error)
	}{
		{"inclusion", func(s logical.Storage) ([]tlog.Hash, error) { return f.tree.Inclusion(f.ctx, s, 1234, n) }},
		{"consistency", func(s logical.Storage) ([]tlog.Hash, error) { return f.tree.Consistency(f.ctx, s, 3001, n) }},
	} {
		cs := &countingStorage{Storage: f.s, gets: map[string]int{}}
		p, err := tc.prove(cs)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 2*log2 || cs.gets["log/tree/hashes/"] > 2*log2 || cs.gets["log/entries/"] != 0 {
			t.Fatalf("%s proof: %d hashes, reads %v", tc.name, len(p), cs.gets)
		}
	}
}
