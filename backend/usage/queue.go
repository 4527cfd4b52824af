package usage

// idQueue is a FIFO of key ids: O(1) amortised push and pop, and its
// backing array shrinks back when drained.
type idQueue struct {
	items []string
	head  int
}

func (q *idQueue) len() int { return len(q.items) - q.head }

func (q *idQueue) push(id string) { q.items = append(q.items, id) }

func (q *idQueue) pop() (string, bool) {
	if q.head >= len(q.items) {
		return "", false
	}
	id := q.items[q.head]
	q.items[q.head] = ""
	q.head++
	switch {
	case q.head == len(q.items):
		// Drained: start over, releasing a large array.
		if cap(q.items) > 1024 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	case q.head > 1024 && q.head*2 >= len(q.items):
		// Half consumed: move the rest to the front so the array does not
		// grow without bound while the queue never drains.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	return id, true
}
