package benchkit

import (
	"context"
	"sort"
	"time"
)

// Median is the median of xs (0 for none); xs is left as it was.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianMillis runs call n times one after another and returns the median
// of their latencies in milliseconds; it stops at the first error or when
// ctx ends.
func MedianMillis(ctx context.Context, n int, call func() error) (float64, error) {
	lats := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := call(); err != nil {
			return 0, err
		}
		lats = append(lats, float64(time.Since(start).Microseconds())/1000)
	}
	return Median(lats), nil
}
