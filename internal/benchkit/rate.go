package benchkit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Rate runs call from workers concurrent goroutines for about d and
// returns the calls completed per second. Each worker numbers its calls
// w, w+workers, ... so together they pass every i once. It stops at the
// first error and returns it.
func Rate(workers int, d time.Duration, call func(i int) error) (float64, error) {
	workers = max(workers, 1)
	var n atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(stop) && firstErr.Load() == nil; i += workers {
				if err := call(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}(w)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
