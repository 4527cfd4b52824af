package detect

import (
	"sort"
	"strconv"
)

// The details below are what detected alerts say about the traffic; their
// names and formats are read by operators and tooling, so they stay fixed.

// addrDetail names the address an alert is about, if verify was given one.
func addrDetail(addr string) map[string]string {
	if addr == "" {
		return map[string]string{}
	}
	return map[string]string{"client_ip": addr}
}

// joinScopes lists requested scopes separated by commas.
func joinScopes(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// topSources renders the addresses of a guessing burst, most active first.
func topSources(m map[string]int) string {
	type kv struct {
		addr string
		n    int
	}
	var list []kv
	for a, n := range m {
		list = append(list, kv{a, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].addr < list[j].addr
	})
	out := ""
	for i, x := range list {
		if i > 0 {
			out += ","
		}
		out += x.addr + "=" + strconv.Itoa(x.n)
	}
	return out
}
