package hashchain

import (
	"fmt"
	"testing"
)

func chain(n int) []Link {
	prev := Genesis
	var out []Link
	for i := 1; i <= n; i++ {
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		h := Hash(uint64(i), prev, body)
		out = append(out, Link{Seq: uint64(i), Prev: prev, Hash: h, Body: body})
		prev = h
	}
	return out
}

func verify(links []Link, headSeq uint64, head string) Result {
	v := NewVerifier()
	for _, l := range links {
		v.Add(l)
	}
	return v.Finish(headSeq, head)
}

func TestVerify(t *testing.T) {
	good := chain(5)
	head := good[4].Hash
	cases := []struct {
		name     string
		mutate   func([]Link) []Link
		headSeq  uint64
		head     string
		valid    bool
		brokenAt uint64
	}{
		{"intact", func(l []Link) []Link { return l }, 5, head, true, 0},
		{"empty log", func(l []Link) []Link { return nil }, 0, Genesis, true, 0},
		{"body edited", func(l []Link) []Link { l[2].Body = []byte(`{"n":99}`); return l }, 5, head, false, 3},
		{"hash recomputed but next link breaks", func(l []Link) []Link {
			l[2].Body = []byte(`{"n":99}`)
			l[2].Hash = Hash(3, l[2].Prev, l[2].Body)
			return l
		}, 5, head, false, 4},
		{"entry removed", func(l []Link) []Link { return append(l[:1], l[2:]...) }, 5, head, false, 3},
		{"entries swapped", func(l []Link) []Link { l[1], l[2] = l[2], l[1]; return l }, 5, head, false, 3},
		{"newest entry truncated", func(l []Link) []Link { return l[:4] }, 5, head, false, 5},
		{"head altered", func(l []Link) []Link { return l }, 5, Genesis, false, 6},
		{"renumbered", func(l []Link) []Link { l[0].Seq = 7; return l }, 5, head, false, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			links := tc.mutate(chain(5))
			res := verify(links, tc.headSeq, tc.head)
			if res.Valid != tc.valid {
				t.Fatalf("valid = %v, want %v (reason %q)", res.Valid, tc.valid, res.Reason)
			}
			if !tc.valid && res.BrokenAt != tc.brokenAt {
				t.Fatalf("brokenAt = %d, want %d (reason %q)", res.BrokenAt, tc.brokenAt, res.Reason)
			}
			if tc.valid && res.Reason != "" {
				t.Fatalf("valid chain has reason %q", res.Reason)
			}
		})
	}
}

func TestHashBindsEveryInput(t *testing.T) {
	base := Hash(1, Genesis, []byte("a"))
	for name, h := range map[string]string{
		"seq":  Hash(2, Genesis, []byte("a")),
		"prev": Hash(1, base, []byte("a")),
		"body": Hash(1, Genesis, []byte("b")),
	} {
		if h == base {
			t.Errorf("changing %s did not change the hash", name)
		}
	}
}

func TestFailStopsVerification(t *testing.T) {
	links := chain(3)
	v := NewVerifier()
	v.Add(links[0])
	v.Fail(2, "entry 2 is missing")
	v.Add(links[2])
	res := v.Finish(3, links[2].Hash)
	if res.Valid || res.BrokenAt != 2 || res.Reason != "entry 2 is missing" {
		t.Fatalf("got %+v, want broken at 2", res)
	}
}
