package scheduler

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// popAll pops everything due at now, in order.
func popAll(q *dueQueue, now time.Time) []string {
	var out []string
	for {
		id, _, ok := q.PopDue(now)
		if !ok {
			return out
		}
		out = append(out, id)
	}
}

func TestQueueOperations(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type op struct {
		kind string // upsert, offer, remove
		id   string
		due  int
	}
	cases := []struct {
		name string
		ops  []op
		now  int
		want []string
		left int
	}{
		{"nothing due", []op{{"upsert", "a", 5}}, 4, nil, 1},
		{"due exactly at now", []op{{"upsert", "a", 5}}, 5, []string{"a"}, 0},
		{"earliest first", []op{{"upsert", "c", 3}, {"upsert", "a", 1}, {"upsert", "b", 2}, {"upsert", "z", 9}}, 3, []string{"a", "b", "c"}, 1},
		{"ties by id", []op{{"upsert", "b", 1}, {"upsert", "a", 1}}, 1, []string{"a", "b"}, 0},
		{"upsert moves later", []op{{"upsert", "a", 1}, {"upsert", "b", 2}, {"upsert", "a", 9}}, 5, []string{"b"}, 1},
		{"upsert moves earlier", []op{{"upsert", "a", 9}, {"upsert", "a", 1}}, 5, []string{"a"}, 0},
		{"offer does not override", []op{{"upsert", "a", 9}, {"offer", "a", 1}}, 5, nil, 1},
		{"offer adds when absent", []op{{"offer", "a", 1}}, 5, []string{"a"}, 0},
		{"remove", []op{{"upsert", "a", 1}, {"upsert", "b", 1}, {"remove", "a", 0}}, 5, []string{"b"}, 0},
		{"remove absent is a no-op", []op{{"remove", "a", 0}, {"upsert", "b", 1}}, 5, []string{"b"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := newDueQueue()
			for _, o := range tc.ops {
				switch o.kind {
				case "upsert":
					q.Upsert(o.id, at(o.due))
				case "offer":
					q.Offer(o.id, at(o.due))
				case "remove":
					q.Remove(o.id)
				}
			}
			if got := popAll(q, at(tc.now)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("popped %v, want %v", got, tc.want)
			}
			if q.Len() != tc.left {
				t.Fatalf("Len = %d, want %d", q.Len(), tc.left)
			}
		})
	}
}

func TestQueuePeekAndDue(t *testing.T) {
	q := newDueQueue()
	if _, _, ok := q.Peek(); ok {
		t.Fatal("Peek on empty queue reported an item")
	}
	q.Upsert("b", t0.Add(time.Hour))
	q.Upsert("a", t0)
	if id, due, ok := q.Peek(); !ok || id != "a" || !due.Equal(t0) {
		t.Fatalf("Peek = %q %v %v", id, due, ok)
	}
	if d, ok := q.Due("b"); !ok || !d.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Due(b) = %v %v", d, ok)
	}
	if _, ok := q.Due("x"); ok {
		t.Fatal("Due of an absent id reported ok")
	}
}

// TestQueueEarlierNeverDelays: Earlier adds an absent id and moves a
// queued one earlier, never later, as a stale source of due times must.
func TestQueueEarlierNeverDelays(t *testing.T) {
	r := NewRunner(Limits{Budget: time.Minute, MaxItems: 10})
	if _, ok := r.Earliest(); ok {
		t.Fatal("Earliest of an empty runner reported an item")
	}
	if !r.Earlier("a", t0.Add(time.Hour)) {
		t.Fatal("Earlier did not add an absent id")
	}
	if r.Earlier("a", t0.Add(2*time.Hour)) {
		t.Fatal("Earlier made a queued id later")
	}
	if !r.Earlier("a", t0) {
		t.Fatal("Earlier did not move a queued id earlier")
	}
	r.Schedule("b", t0.Add(-time.Minute))
	if due, ok := r.Earliest(); !ok || !due.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("Earliest = %v %v", due, ok)
	}
	if d, _ := r.Due("a"); !d.Equal(t0) {
		t.Fatalf("a is due at %v, want %v", d, t0)
	}
}

// TestQueueLargeOrder checks heap order under many random-ish updates.
func TestQueueLargeOrder(t *testing.T) {
	q := newDueQueue()
	const n = 5000
	for i := 0; i < n; i++ {
		q.Upsert(fmt.Sprintf("k%05d", i), t0.Add(time.Duration((i*7919)%n)*time.Second))
	}
	for i := 0; i < n; i += 3 {
		q.Remove(fmt.Sprintf("k%05d", i))
	}
	var last time.Time
	count := 0
	for {
		_, due, ok := q.PopDue(t0.Add(time.Duration(n) * time.Second))
		if !ok {
			break
		}
		if due.Before(last) {
			t.Fatalf("popped %v after %v", due, last)
		}
		last = due
		count++
	}
	if want := n - (n+2)/3; count != want {
		t.Fatalf("popped %d, want %d", count, want)
	}
}

func TestQueueCountDue(t *testing.T) {
	q := newDueQueue()
	if n := q.CountDue(t0); n != 0 {
		t.Fatalf("CountDue on empty queue = %d", n)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		q.Upsert(fmt.Sprintf("k%04d", i), t0.Add(time.Duration((i*7919)%n)*time.Second))
	}
	for _, at := range []int{-1, 0, 1, 499, 998, 999, 5000} {
		want := at + 1
		if want < 0 {
			want = 0
		}
		if want > n {
			want = n
		}
		if got := q.CountDue(t0.Add(time.Duration(at) * time.Second)); got != want {
			t.Fatalf("CountDue(t0+%ds) = %d, want %d", at, got, want)
		}
	}
	popAll(q, t0.Add(99*time.Second))
	if got := q.CountDue(t0.Add(199 * time.Second)); got != 100 {
		t.Fatalf("CountDue after popping 100 = %d, want 100", got)
	}
}
