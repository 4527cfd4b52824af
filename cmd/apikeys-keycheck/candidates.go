package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one candidate line; keys are at most a few hundred bytes,
// and a longer line is reported as an input error rather than read whole.
const maxLine = 64 << 10

// filterCandidates writes the well-formed keys among the lines of r to out
// and a count of them (never a candidate) to log.
func filterCandidates(c checker, r io.Reader, out, log io.Writer) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	w := bufio.NewWriter(out)
	var seen, kept int
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		seen++
		if c.wellFormed(s) {
			kept++
			fmt.Fprintln(w, s)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading candidates: %w", err)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "apikeys-keycheck: %d of %d candidates are well-formed keys\n", kept, seen)
	return kept, nil
}
