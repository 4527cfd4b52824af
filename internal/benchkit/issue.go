package benchkit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Issuer issues keys through Vault's API from concurrent workers, to seed
// a benchmark's mount.
type Issuer struct {
	// Do sends one request (Do above, bound to a client, address and token).
	Do func(method, path string, body interface{}) (map[string]interface{}, error)
	// Path is the API path (starting /v1/) that issues the i-th key.
	Path func(i int) string
	// Body is the request body of every issuance (e.g. the role).
	Body    interface{}
	Workers int
}

// Issue issues n keys and returns every keep-th plaintext (keep >= n: all),
// printing progress every 10,000 keys.
func (is Issuer) Issue(n, keep int) ([]string, error) {
	every := 1
	if keep > 0 && keep < n {
		every = (n + keep - 1) / keep
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		kept    []string
		firstEr error
		wg      sync.WaitGroup
		done    atomic.Int64
	)
	start := time.Now()
	for w := 0; w < max(is.Workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				data, err := is.Do("POST", is.Path(i), is.Body)
				key, ok := data["key"].(string)
				if err == nil && !ok {
					err = fmt.Errorf("issue response without key")
				}
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				if i%every == 0 {
					mu.Lock()
					kept = append(kept, key)
					mu.Unlock()
				}
				if d := done.Add(1); d%10000 == 0 {
					fmt.Printf("  %d keys issued (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	return kept, firstEr
}
