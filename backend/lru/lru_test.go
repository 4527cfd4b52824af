package lru

import (
	"fmt"
	"testing"
)

func TestCache(t *testing.T) {
	type op struct {
		do   string // add, get, remove
		key  string
		val  int
		want int // for get: expected value, -1 for absent
	}
	cases := []struct {
		name    string
		cap     int
		ops     []op
		wantLen int
	}{
		{"add and get", 2, []op{{"add", "a", 1, 0}, {"get", "a", 0, 1}, {"get", "b", 0, -1}}, 1},
		{"evicts least recently added", 2, []op{{"add", "a", 1, 0}, {"add", "b", 2, 0}, {"add", "c", 3, 0}, {"get", "a", 0, -1}, {"get", "b", 0, 2}, {"get", "c", 0, 3}}, 2},
		{"get refreshes recency", 2, []op{{"add", "a", 1, 0}, {"add", "b", 2, 0}, {"get", "a", 0, 1}, {"add", "c", 3, 0}, {"get", "b", 0, -1}, {"get", "a", 0, 1}}, 2},
		{"update replaces value", 2, []op{{"add", "a", 1, 0}, {"add", "a", 5, 0}, {"get", "a", 0, 5}}, 1},
		{"remove", 2, []op{{"add", "a", 1, 0}, {"remove", "a", 0, 0}, {"get", "a", 0, -1}, {"remove", "a", 0, 0}}, 0},
		{"capacity below one is one", 0, []op{{"add", "a", 1, 0}, {"add", "b", 2, 0}, {"get", "a", 0, -1}, {"get", "b", 0, 2}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New[string, int](tc.cap)
			for i, o := range tc.ops {
				switch o.do {
				case "add":
					c.Add(o.key, o.val)
				case "remove":
					c.Remove(o.key)
				case "get":
					v, ok := c.Get(o.key)
					if o.want == -1 {
						if ok {
							t.Fatalf("op %d: get %q = %d, want absent", i, o.key, v)
						}
					} else if !ok || v != o.want {
						t.Fatalf("op %d: get %q = %d,%v, want %d", i, o.key, v, ok, o.want)
					}
				}
			}
			if c.Len() != tc.wantLen {
				t.Fatalf("len = %d, want %d", c.Len(), tc.wantLen)
			}
		})
	}
}

func TestCacheStaysBounded(t *testing.T) {
	c := New[string, int](100)
	evictions := 0
	for i := 0; i < 10000; i++ {
		if c.Add(fmt.Sprint(i), i) {
			evictions++
		}
	}
	if c.Len() != 100 || len(c.items) != 100 || evictions != 9900 {
		t.Fatalf("len=%d items=%d evictions=%d", c.Len(), len(c.items), evictions)
	}
	if v, ok := c.Peek("9999"); !ok || v != 9999 {
		t.Fatalf("newest entry missing")
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatal("purge left entries")
	}
}
