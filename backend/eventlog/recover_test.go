package eventlog

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// bodiesOf encodes events as a key change's WAL entry keeps them.
func bodiesOf(t *testing.T, now time.Time, evs ...Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		b, err := Encode(ev, now)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func events(t *testing.T, l *Log, s logical.Storage) []Event {
	t.Helper()
	ctx := context.Background()
	head, err := l.Head(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, err := l.Entry(ctx, s, seq)
		if err != nil || rec == nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
		var ev Event
		if err := json.Unmarshal(rec.Event, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestAppendMissingAppendsEachChangeOnce(t *testing.T) {
	ctx := context.Background()
	l, s, clk := newLog(t)
	bodies := bodiesOf(t, t0,
		Event{Type: KeyRotated, Client: "svc", Key: "k", Version: 2},
		Event{Type: KeyRetired, Client: "svc", Key: "k", Version: 1, Details: map[string]string{"reason": "grace period ended"}},
	)
	// The commit was cut off after its first log entry.
	if err := l.AppendBody(ctx, s, []byte(bodies[0])); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Minute)
	for run := 0; run < 2; run++ { // a recovery that runs again adds nothing
		if err := l.AppendMissing(ctx, s, bodies, 0, t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	evs := events(t, l, s)
	if len(evs) != 2 {
		t.Fatalf("entries = %+v", evs)
	}
	late := evs[1]
	if late.Type != KeyRetired || late.Details[DetailRecovered] != "true" || late.Details[DetailOccurredAt] != t0.Format(time.RFC3339Nano) ||
		late.Details["reason"] != "grace period ended" || !late.Time.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("recovered entry = %+v", late)
	}
	if evs[0].Details[DetailRecovered] != "" {
		t.Fatalf("the entry written in time was marked recovered: %+v", evs[0])
	}
	if res := verify(t, l, s); !res.Valid {
		t.Fatalf("verify = %+v", res)
	}
}

// A recovered entry is recognised as its change, so a later recovery of the
// same change does not log it again.
func TestAppendMissingRecognisesRecoveredEntries(t *testing.T) {
	ctx := context.Background()
	l, s, clk := newLog(t)
	bodies := bodiesOf(t, t0, Event{Type: KeyExpired, Client: "svc", Key: "k"})
	clk.Advance(time.Minute)
	for run := 0; run < 3; run++ {
		if err := l.AppendMissing(ctx, s, bodies, 0, t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	if evs := events(t, l, s); len(evs) != 1 || evs[0].Details[DetailRecovered] != "true" {
		t.Fatalf("entries = %+v", evs)
	}
	if err := l.AppendMissing(ctx, s, nil, 0, t0); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityIgnoresRecoveryMarks(t *testing.T) {
	body := bodiesOf(t, t0, Event{Type: KeyRevoked, Key: "k", Details: map[string]string{"reason": "r"}})[0]
	late, err := recovered([]byte(body), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if identity(late) != identity([]byte(body)) {
		t.Fatalf("identities differ:\n%s\n%s", identity(late), identity([]byte(body)))
	}
	other := bodiesOf(t, t0.Add(time.Second), Event{Type: KeyRevoked, Key: "k", Details: map[string]string{"reason": "r"}})[0]
	if identity([]byte(other)) == identity([]byte(body)) {
		t.Fatal("two changes at different times share an identity")
	}
}

// readCounter counts storage reads.
type readCounter struct {
	logical.Storage
	gets int
}

func (r *readCounter) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	r.gets++
	return r.Storage.Get(ctx, key)
}

// A change that noted NextSeq before its appends is recovered by reading
// only the entries appended since, however many the log held before and
// however recent they are: a bulk revoke's busy log must not make the
// recovery at mount start read minutes of entries.
func TestAppendMissingFromReadsOnlyLaterEntries(t *testing.T) {
	ctx := context.Background()
	l, s, clk := newLog(t)
	for i := 0; i < 500; i++ { // a busy log, all within the last minute
		if err := l.Append(ctx, s, Event{Type: KeyIssued, Client: "svc", Key: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	rc := &readCounter{Storage: s}
	from, err := l.NextSeq(ctx, rc)
	if err != nil || from != 501 || rc.gets != 0 {
		t.Fatalf("NextSeq after appends: %d, %v, %d reads (want 501 from memory)", from, err, rc.gets)
	}
	bodies := bodiesOf(t, clk.Now(),
		Event{Type: KeyRotated, Client: "svc", Key: "k", Version: 2},
		Event{Type: KeyRetired, Client: "svc", Key: "k", Version: 1},
	)
	if err := l.AppendBody(ctx, s, []byte(bodies[0])); err != nil { // cut off after one
		t.Fatal(err)
	}
	if err := l.Append(ctx, s, Event{Type: KeyIssued, Client: "svc", Key: "another"}); err != nil {
		t.Fatal(err)
	}
	rc.gets = 0
	for run := 0; run < 2; run++ {
		if err := l.AppendMissing(ctx, rc, bodies, from, clk.Now().Add(-15*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if rc.gets > 12 { // two runs: the head and 2-3 entries each, plus the appends' head reads
		t.Fatalf("recovery read %d entries: it scanned back past the change", rc.gets)
	}
	evs := events(t, l, s)
	if len(evs) != 503 || evs[502].Type != KeyRetired || evs[502].Details[DetailRecovered] != "true" {
		t.Fatalf("after recovery: %d entries, last %+v", len(evs), evs[len(evs)-1])
	}
	// A fresh process reads the head once, then answers from memory.
	l2 := New(clk, 512<<10)
	rc.gets = 0
	for i := 0; i < 3; i++ {
		if from, err := l2.NextSeq(ctx, rc); err != nil || from != 504 {
			t.Fatalf("fresh NextSeq: %d, %v", from, err)
		}
	}
	if rc.gets != 1 {
		t.Fatalf("fresh NextSeq read storage %d times", rc.gets)
	}
}
