package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newLog(t *testing.T) (*Log, logical.Storage, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	return New(clk, 512<<10), &logical.InmemStorage{}, clk
}

func appendN(t *testing.T, l *Log, s logical.Storage, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		ev := Event{Type: KeyRotated, Actor: record.Actor{Type: "system"}, Client: "svc", Key: "k", Version: i}
		if err := l.Append(context.Background(), s, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, l *Log, s logical.Storage) hashchain.Result {
	t.Helper()
	res, err := l.Verify(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEmptyLogVerifies(t *testing.T) {
	l, s, _ := newLog(t)
	head, err := l.Head(context.Background(), s)
	if err != nil || head.Seq != 0 || head.Hash != hashchain.Genesis {
		t.Fatalf("head of an empty log = %+v, %v", head, err)
	}
	if res := verify(t, l, s); !res.Valid || res.Entries != 0 || res.Head != hashchain.Genesis {
		t.Fatalf("empty log: %+v", res)
	}
}

func TestAppendChainsAndVerifies(t *testing.T) {
	ctx := context.Background()
	l, s, clk := newLog(t)
	appendN(t, l, s, 2)
	clk.Advance(time.Minute)
	stamped := t0.Add(-time.Hour)
	if err := l.Append(ctx, s, Event{Type: KeyRevoked, Time: stamped}); err != nil {
		t.Fatal(err)
	}
	head, err := l.Head(ctx, s)
	if err != nil || head.Seq != 3 {
		t.Fatalf("head = %+v, %v", head, err)
	}
	prev := hashchain.Genesis
	for seq := uint64(1); seq <= 3; seq++ {
		rec, err := l.Entry(ctx, s, seq)
		if err != nil || rec == nil {
			t.Fatalf("entry %d: %v, %v", seq, rec, err)
		}
		if rec.Seq != seq || rec.Prev != prev || rec.Hash != hashchain.Hash(seq, prev, rec.Event) {
			t.Fatalf("entry %d does not chain: %+v", seq, rec)
		}
		prev = rec.Hash
	}
	if head.Hash != prev {
		t.Fatalf("head hash %s, last entry %s", head.Hash, prev)
	}
	// An event without a time takes the clock's; one with a time keeps it.
	first, _ := l.Entry(ctx, s, 1)
	last, _ := l.Entry(ctx, s, 3)
	var a, b Event
	if json.Unmarshal(first.Event, &a) != nil || json.Unmarshal(last.Event, &b) != nil || !a.Time.Equal(t0) || !b.Time.Equal(stamped) {
		t.Fatalf("times: %v, %v", a.Time, b.Time)
	}
	if rec, err := l.Entry(ctx, s, 4); rec != nil || err != nil {
		t.Fatalf("entry past the head = %v, %v", rec, err)
	}
	if res := verify(t, l, s); !res.Valid || res.Entries != 3 || res.Head != head.Hash {
		t.Fatalf("verify = %+v", res)
	}
}

// The stored format is fixed: mounts already hold it.
func TestStorageFormat(t *testing.T) {
	ctx := context.Background()
	l, s, _ := newLog(t)
	ev := Event{Type: ClientLocked, Actor: record.Actor{Type: "entity", EntityID: "e1"}, RequestID: "r1", Client: "svc", Details: map[string]string{"reason": "INC-1"}}
	if err := l.Append(ctx, s, ev); err != nil {
		t.Fatal(err)
	}
	keys, err := logical.CollectKeys(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "log/entries/00000000000000000001,log/head" && strings.Join(keys, ",") != "log/head,log/entries/00000000000000000001" {
		t.Fatalf("storage keys = %v", keys)
	}
	body := `{"time":"2024-05-01T12:00:00Z","type":"client.locked","actor":{"type":"entity","entity_id":"e1"},"request_id":"r1","client":"svc","details":{"reason":"INC-1"}}`
	hash := hashchain.Hash(1, hashchain.Genesis, []byte(body))
	entry, _ := s.Get(ctx, "log/entries/00000000000000000001")
	want := fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":%s}`+"\n", hashchain.Genesis, hash, body)
	if string(entry.Value) != want {
		t.Fatalf("stored entry\n got %s\nwant %s", entry.Value, want)
	}
	headEntry, _ := s.Get(ctx, "log/head")
	if want := fmt.Sprintf(`{"seq":1,"hash":"%s"}`+"\n", hash); string(headEntry.Value) != want {
		t.Fatalf("stored head\n got %s\nwant %s", headEntry.Value, want)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		tamper   func(t *testing.T, s logical.Storage)
		brokenAt uint64
	}{
		{"event edited", func(t *testing.T, s logical.Storage) {
			edit(t, s, 2, func(v string) string { return strings.Replace(v, `"version":2`, `"version":9`, 1) })
		}, 2},
		{"entry deleted", func(t *testing.T, s logical.Storage) {
			if err := s.Delete(ctx, entryKey(3)); err != nil {
				t.Fatal(err)
			}
		}, 3},
		{"entries swapped", func(t *testing.T, s logical.Storage) {
			a, _ := s.Get(ctx, entryKey(2))
			b, _ := s.Get(ctx, entryKey(3))
			a.Key, b.Key = entryKey(3), entryKey(2)
			_ = s.Put(ctx, a)
			_ = s.Put(ctx, b)
		}, 3},
		{"entry unreadable", func(t *testing.T, s logical.Storage) {
			edit(t, s, 4, func(string) string { return "{" })
		}, 4},
		{"newest entries truncated with the head kept", func(t *testing.T, s logical.Storage) {
			_ = s.Delete(ctx, entryKey(5))
		}, 5},
		{"head moved past the newest entry", func(t *testing.T, s logical.Storage) {
			e, _ := logical.StorageEntryJSON(storageHead, Head{Seq: 6, Hash: "x"})
			_ = s.Put(ctx, e)
		}, 6},
		{"event edited and its hash recomputed", func(t *testing.T, s logical.Storage) {
			rec, _ := (&Log{}).Entry(ctx, s, 2)
			rec.Event = json.RawMessage(strings.Replace(string(rec.Event), `"client":"svc"`, `"client":"evil"`, 1))
			rec.Hash = hashchain.Hash(rec.Seq, rec.Prev, rec.Event)
			e, _ := logical.StorageEntryJSON(entryKey(2), rec)
			_ = s.Put(ctx, e)
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, s, _ := newLog(t)
			appendN(t, l, s, 5)
			if res := verify(t, l, s); !res.Valid {
				t.Fatalf("before tampering: %+v", res)
			}
			tc.tamper(t, s)
			res := verify(t, l, s)
			if res.Valid || res.BrokenAt != tc.brokenAt || res.Reason == "" {
				t.Fatalf("verify = %+v, want broken at %d", res, tc.brokenAt)
			}
		})
	}
}

// What the chain does not guarantee: dropping the newest entries together
// with a head rolled back to match leaves a shorter chain that verifies.
// Only a copy of the head kept elsewhere shows it.
func TestVerifyCannotSeeATruncationWithAMatchingHead(t *testing.T) {
	ctx := context.Background()
	l, s, _ := newLog(t)
	appendN(t, l, s, 5)
	full := verify(t, l, s)
	rec, _ := l.Entry(ctx, s, 3)
	e, _ := logical.StorageEntryJSON(storageHead, Head{Seq: 3, Hash: rec.Hash})
	_ = s.Put(ctx, e)
	_ = s.Delete(ctx, entryKey(4))
	_ = s.Delete(ctx, entryKey(5))
	res := verify(t, l, s)
	if !res.Valid || res.Entries != 3 || res.Head == full.Head {
		t.Fatalf("verify = %+v (full chain head %s)", res, full.Head)
	}
}

func edit(t *testing.T, s logical.Storage, seq uint64, f func(string) string) {
	t.Helper()
	e, err := s.Get(context.Background(), entryKey(seq))
	if err != nil || e == nil {
		t.Fatalf("entry %d: %v", seq, err)
	}
	v := f(string(e.Value))
	if v == string(e.Value) {
		t.Fatalf("edit of entry %d changed nothing", seq)
	}
	e.Value = []byte(v)
	if err := s.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// A crash between the entry write and the head write leaves an entry the
// head does not count; the next append takes its place.
func TestAppendOverwritesEntryPastTheHead(t *testing.T) {
	ctx := context.Background()
	l, s, _ := newLog(t)
	appendN(t, l, s, 2)
	orphan, _ := logical.StorageEntryJSON(entryKey(3), Entry{Seq: 3, Prev: "x", Hash: "y", Event: json.RawMessage(`{}`)})
	_ = s.Put(ctx, orphan)
	if res := verify(t, l, s); !res.Valid || res.Entries != 2 {
		t.Fatalf("an entry past the head counted: %+v", res)
	}
	appendN(t, l, s, 1)
	if res := verify(t, l, s); !res.Valid || res.Entries != 3 {
		t.Fatalf("after the next append: %+v", res)
	}
}

func TestAppendRefusesOversizedEntry(t *testing.T) {
	ctx := context.Background()
	l := New(clock.NewFake(t0), 300)
	s := &logical.InmemStorage{}
	appendN(t, l, s, 1)
	err := l.Append(ctx, s, Event{Type: LeakReported, Details: map[string]string{"source": strings.Repeat("x", 300)}})
	if !errors.Is(err, errEntryTooLarge) || !strings.Contains(err.Error(), "log entry") {
		t.Fatalf("oversized append: %v", err)
	}
	if rec, _ := l.Entry(ctx, s, 2); rec != nil {
		t.Fatal("the oversized entry was stored")
	}
	if res := verify(t, l, s); !res.Valid || res.Entries != 1 {
		t.Fatalf("after a refused append: %+v", res)
	}
}

func TestConcurrentAppendsEachTakeOneSequenceNumber(t *testing.T) {
	l, s, _ := newLog(t)
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Append(context.Background(), s, Event{Type: TokenIssued}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if res := verify(t, l, s); !res.Valid || res.Entries != n {
		t.Fatalf("after %d concurrent appends: %+v", n, res)
	}
}

// headReads counts reads of the log head.
type headReads struct {
	logical.Storage
	n int
}

func (h *headReads) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if key == storageHead {
		h.n++
	}
	return h.Storage.Get(ctx, key)
}

// TestAppendsReadTheHeadOnce: appends after the first take the head from
// memory, and an invalidation of the head makes the next one read it.
func TestAppendsReadTheHeadOnce(t *testing.T) {
	l, s, _ := newLog(t)
	hr := &headReads{Storage: s}
	appendN(t, l, hr, 5)
	if hr.n != 1 {
		t.Fatalf("5 appends read the head %d times, want 1", hr.n)
	}
	// Another process appended: this one is told, and continues its chain.
	other := New(clock.NewFake(t0), 512<<10)
	appendN(t, other, s, 2)
	l.Invalidate(storageHead)
	appendN(t, l, hr, 1)
	if hr.n != 2 {
		t.Fatalf("the append after an invalidation read the head %d times in all, want 2", hr.n)
	}
	if res := verify(t, l, s); !res.Valid || res.Entries != 8 {
		t.Fatalf("chain after appends from two logs: %+v", res)
	}
}

// gatedStorage holds the Put of one entry key until released, counts head
// writes, and fails the Put of another entry key once.
type gatedStorage struct {
	logical.Storage
	hold, failKey string
	reached       chan struct{}
	release       chan struct{}
	mu            sync.Mutex
	headPuts      int
	failed        bool
}

func (g *gatedStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	switch e.Key {
	case g.hold:
		close(g.reached)
		<-g.release
	case storageHead:
		g.mu.Lock()
		g.headPuts++
		g.mu.Unlock()
	case g.failKey:
		g.mu.Lock()
		first := !g.failed
		g.failed = true
		g.mu.Unlock()
		if first {
			return errors.New("storage refused the write")
		}
	}
	return g.Storage.Put(ctx, e)
}

// burst appends one entry, holds its write, queues n more behind it, then
// releases: the n are committed together. It returns each append's error.
func burst(t *testing.T, l *Log, g *gatedStorage, n int) []error {
	t.Helper()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	add := func(i int) {
		defer wg.Done()
		errs[i] = l.Append(context.Background(), g, Event{Type: KeyRotated, Actor: record.Actor{Type: "system"}, Version: i})
	}
	wg.Add(1)
	go add(0)
	<-g.reached
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go add(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.queueMu.Lock()
		queued := len(l.queue)
		l.queueMu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d appends queued", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	return errs
}

func TestAppendsWaitingAreCommittedTogether(t *testing.T) {
	l, s, _ := newLog(t)
	g := &gatedStorage{Storage: s, hold: entryKey(1), reached: make(chan struct{}), release: make(chan struct{})}
	for i, err := range burst(t, l, g, 5) {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if g.headPuts != 2 {
		t.Fatalf("6 appends, 5 of them waiting, wrote the head %d times; want 2 (one commit each)", g.headPuts)
	}
	if res := verify(t, l, s); !res.Valid || res.Entries != 6 {
		t.Fatalf("after the burst: %+v", res)
	}
}

func TestACommitCountsOnlyEntriesStoredWithoutAGap(t *testing.T) {
	l, s, _ := newLog(t)
	g := &gatedStorage{Storage: s, hold: entryKey(1), failKey: entryKey(3), reached: make(chan struct{}), release: make(chan struct{})}
	errs := burst(t, l, g, 4) // entry 1 alone, then 2..5 together; 3 fails
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("errors %v: want the append of entry 3 and the two after it to fail", errs)
	}
	head, err := l.Head(context.Background(), s)
	if err != nil || head.Seq != 2 {
		t.Fatalf("head after the failed write = %+v, %v; want 2", head, err)
	}
	appendN(t, l, s, 1) // takes 3, over the uncounted entries
	if res := verify(t, l, s); !res.Valid || res.Entries != 3 {
		t.Fatalf("after the next append: %+v", res)
	}
}
