package usage

import (
	"fmt"
	"testing"
)

func TestIDQueueFIFOAndCompaction(t *testing.T) {
	var q idQueue
	next := 0
	for round := 0; round < 5; round++ {
		for i := 0; i < 3000; i++ {
			q.push(fmt.Sprint(round*3000 + i))
		}
		for i := 0; i < 2000; i++ {
			id, ok := q.pop()
			if !ok || id != fmt.Sprint(next) {
				t.Fatalf("pop = %q %v, want %d", id, ok, next)
			}
			next++
		}
		if len(q.items) > 2*q.len()+2048 {
			t.Fatalf("backing array %d for %d queued", len(q.items), q.len())
		}
	}
	for q.len() > 0 {
		q.pop()
	}
	if _, ok := q.pop(); ok || q.items != nil {
		t.Fatal("drained queue kept its array")
	}
}
