package scheduler

import (
	"container/heap"
	"sync"
	"time"
)

// dueQueue is an in-memory priority queue of ids by due time, safe for
// concurrent use. Every operation is O(log n) or better, so a pass that pops
// only what is due costs O(due · log n), not O(n).
type dueQueue struct {
	mu    sync.Mutex
	h     dueHeap
	items map[string]*dueItem
}

type dueItem struct {
	id    string
	due   time.Time
	index int
}

func newDueQueue() *dueQueue {
	return &dueQueue{items: make(map[string]*dueItem)}
}

// Upsert sets id's due time, adding it if absent.
func (q *dueQueue) Upsert(id string, due time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.upsertLocked(id, due)
}

// Offer adds id at due only if it is absent, so it never overwrites a
// fresher due time set meanwhile (see Runner.Offer).
func (q *dueQueue) Offer(id string, due time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.items[id]; ok {
		return false
	}
	q.upsertLocked(id, due)
	return true
}

// Earlier adds id at due unless it is queued at or before due already.
func (q *dueQueue) Earlier(id string, due time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[id]; ok && !it.due.After(due) {
		return false
	}
	q.upsertLocked(id, due)
	return true
}

func (q *dueQueue) upsertLocked(id string, due time.Time) {
	if it, ok := q.items[id]; ok {
		it.due = due
		heap.Fix(&q.h, it.index)
		return
	}
	it := &dueItem{id: id, due: due}
	q.items[id] = it
	heap.Push(&q.h, it)
}

// Remove drops id; it is a no-op for an absent id.
func (q *dueQueue) Remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[id]; ok {
		heap.Remove(&q.h, it.index)
		delete(q.items, id)
	}
}

// PopDue removes and returns the earliest item if it is due at now.
func (q *dueQueue) PopDue(now time.Time) (id string, due time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 || q.h[0].due.After(now) {
		return "", time.Time{}, false
	}
	it := heap.Pop(&q.h).(*dueItem)
	delete(q.items, it.id)
	return it.id, it.due, true
}

// Peek returns the earliest item without removing it.
func (q *dueQueue) Peek() (id string, due time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return "", time.Time{}, false
	}
	return q.h[0].id, q.h[0].due, true
}

// CountDue returns how many items are due at now. It walks only the part
// of the heap that is due (a child is never earlier than its parent), so it
// costs O(due), not O(n): callers report a backlog without scanning the
// whole queue.
func (q *dueQueue) CountDue(now time.Time) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(q.h) || q.h[i].due.After(now) {
			continue
		}
		n++
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return n
}

// Due returns id's due time, if queued.
func (q *dueQueue) Due(id string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[id]; ok {
		return it.due, true
	}
	return time.Time{}, false
}

// Len is the number of queued items.
func (q *dueQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// dueHeap implements heap.Interface, earliest due first (ties by id, so the
// order is deterministic).
type dueHeap []*dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].id < h[j].id
	}
	return h[i].due.Before(h[j].due)
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *dueHeap) Push(x any) {
	it := x.(*dueItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return it
}
