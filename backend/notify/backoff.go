package notify

import (
	"math/rand/v2"
	"time"
)

const (
	retryBase = 5 * time.Second
	retryCap  = time.Hour
)

// RetryDelay returns the delay before retry number attempt (1 is the first
// retry): 5s doubling per attempt, capped at one hour, then jittered into
// [d/2, d] by rnd, which returns values in [0,1) (nil uses math/rand).
// Jitter spreads the retries of many messages that failed together, e.g.
// when a receiver was down, so they do not return as one burst; keeping
// the lower half fixed keeps the schedule predictable for operators.
func RetryDelay(attempt int, rnd func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := retryCap
	if attempt <= 20 { // 5s<<19 is already past the cap; larger shifts would overflow
		if v := retryBase << (attempt - 1); v < retryCap {
			d = v
		}
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if r < 0 || r >= 1 {
		r = 0
	}
	half := d / 2
	return half + time.Duration(r*float64(d-half))
}
