package fuzz

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// hugeLen is just above Vault's 1 MiB storage entry limit on Raft, where
// unbounded input used to end in a 500 ("value too large").
const hugeLen = 1_200_000

var (
	huge        = strings.Repeat("x", hugeLen)
	hugeUnicode = strings.Repeat("é", hugeLen/2)
)

// hostileStrings go into every string field, and (as text) into fields of
// other types. Besides the generic ones (empty, huge, unicode, control
// characters, NUL) they include what the mount's own formats refuse (CIDRs,
// cron, durations, numbers): a field is fuzzed with every kind, so a new
// field of any kind gets them all.
var hostileStrings = []string{
	"", " ", "\t\n", "\x00", "a\x00b", "\x1b[2J\x07", "\r\nX-Injected: 1",
	"ключ", "🔑🔑", "\u202eevil", "a\u200bb", "\ufeff", "\U0010ffff", "é",
	"..", "../..", "a/b", "%2f", "*", "?", "#", "${jndi:ldap://x}", "<script>",
	strings.Repeat("a", 65), strings.Repeat("a", 257), strings.Repeat("a:", 5000),
	// CIDRs
	"10.0.0.0/33", "::ffff:1.2.3.4/129", "1.2.3.4/-1", "300.1.1.1", "10.0.0.0/8,,",
	"fe80::1%eth0/64", "0.0.0.0/0", "::/0", "not-an-ip", "1.2.3.4:99999",
	// cron
	"* * * * * * *", "TZ=", "CRON_TZ=Mars/Base 0 0 * * *", "@every -1s", "@every 1ns",
	"0 0 30 2 *", "60 24 32 13 8", "*/0 * * * *", "CRON_TZ=", "@reboot",
	// durations and numbers as text
	"-1s", "1e400s", "99999999999999999999d", "9223372036854775807", "9223372036854775808",
	"-9223372036854775809", "1h-1s", "NaN", "Inf", "0x10", "1.5", "-0", "1e309",
}

// hostileNumbers are JSON numbers (and non-numbers) for numeric fields.
var hostileNumbers = []json.RawMessage{
	json.RawMessage(`-1`), json.RawMessage(`0`), json.RawMessage(`9223372036854775807`),
	json.RawMessage(`9223372036854775808`), json.RawMessage(`-9223372036854775809`),
	json.RawMessage(`1e308`), json.RawMessage(`1e309`), json.RawMessage(`-1e308`), json.RawMessage(`1.5`),
	json.RawMessage(`1e-9`), json.RawMessage(`2147483648`), json.RawMessage(`18446744073709551616`),
}

// wrongTypes go into a field of any declared type.
var wrongTypes = []json.RawMessage{
	json.RawMessage(`null`), json.RawMessage(`true`), json.RawMessage(`false`), json.RawMessage(`12345`),
	json.RawMessage(`{}`), json.RawMessage(`{"a":{"b":[1,{"c":null}]}}`), json.RawMessage(`[]`),
	json.RawMessage(`[1,"a",null,{}]`), json.RawMessage(`[[[]]]`), json.RawMessage(`""`),
	json.RawMessage(strings.Repeat("[", 500) + strings.Repeat("]", 500)),
}

// pathTricks replace a path parameter. They are sent as written: "%2f" and
// "//" reach Vault encoded and doubled.
var pathTricks = []string{
	"..", ".", "%2e%2e", "%2f", "a%2fb", "a//b", "..%2f..%2fsys%2fraw", "%00", "a%00b", "%20",
	"%0a", "%ff", "%c3%a9", "%F0%9F%94%91", strings.Repeat("a", 65), strings.Repeat("a", 4000),
	"*", "a%3Fb", "a%23b", "-lead", "a.b", "%25", "~", "a%5Cb",
}

// mutation is one request the fuzzer sends, with what was done to it.
type mutation struct {
	path   string                     // below the mount, already escaped
	body   map[string]json.RawMessage // nil: no body
	raw    string                     // a raw body instead of body, when set
	header string                     // X-Api-Key header value, when set
	what   string                     // what was fuzzed, for reports
	query  map[string]string
}

// mandatoryRounds is how many values every field is sure to get before
// the random mix: huge, a wrong type, empty.
const mandatoryRounds = 3

// generator builds requests for one operation from its fields and a
// baseline of valid values (so a request reaches the handler's deeper
// checks), changing one or a few things at a time.
type generator struct {
	rng    *rand.Rand
	op     operation
	params map[string]string      // baseline path parameters
	base   map[string]interface{} // baseline field values
}

func (g *generator) next(i int) mutation {
	m := mutation{body: map[string]json.RawMessage{}, query: map[string]string{}}
	for _, f := range g.op.Names {
		if v, ok := g.base[f]; ok {
			m.set(g.op, f, mustJSON(v))
		}
	}
	params := map[string]string{}
	for k, v := range g.params {
		params[k] = escape(v)
	}
	kind := g.rng.IntN(100)
	switch {
	case i < mandatoryRounds*len(g.op.Names):
		// First every field gets, one field at a time, a huge value, a
		// wrong type and an empty one, so no field escapes them by chance.
		f := g.op.Names[i%len(g.op.Names)]
		var v json.RawMessage
		switch i / len(g.op.Names) {
		case 0:
			v = mustJSON(huge)
		case 1:
			v = wrongTypes[i%len(wrongTypes)]
		default:
			v = mustJSON("")
		}
		m.set(g.op, f, v)
		m.what = f + "=" + describe(v)
	case len(g.op.Params) > 0 && kind < 25:
		p := g.op.Params[g.rng.IntN(len(g.op.Params))]
		params[p] = pathTricks[g.rng.IntN(len(pathTricks))]
		m.what = fmt.Sprintf("path parameter %s=%q", p, params[p])
	case len(g.op.Names) > 0 && kind < 88:
		n := 1 + g.rng.IntN(3)
		if kind < 70 {
			n = 1
		}
		var parts []string
		for j := 0; j < n; j++ {
			// Cycle through the fields so each gets its share.
			f := g.op.Names[(i+j)%len(g.op.Names)]
			v, desc := g.value(g.op.Fields[f])
			m.set(g.op, f, v)
			parts = append(parts, f+"="+desc)
		}
		m.what = strings.Join(parts, " ")
	case g.op.Method == "POST" && kind < 94:
		switch g.rng.IntN(4) {
		case 0:
			m.body["unknown_fuzz_field"] = mustJSON("x")
			m.what = "unknown field"
		case 1:
			m.body = map[string]json.RawMessage{}
			m.what = "empty body"
		case 2:
			m.raw = []string{"{", "null", "[]", `"s"`, "{\"a\":}", "\x00", huge[:2000]}[g.rng.IntN(7)]
			m.what = fmt.Sprintf("raw body %.20q", m.raw)
		default:
			for _, f := range g.op.Names {
				m.set(g.op, strings.ToUpper(f[:1])+f[1:], mustJSON("x"))
			}
			m.what = "fields with capitalised names"
		}
	case g.op.Template == "verify" && g.op.Method == "GET":
		m.header = []string{"", "\x7f", huge[:70000], "ak_prod_short", strings.Repeat("é", 100), "\xff\xfe"}[g.rng.IntN(6)]
		m.what = fmt.Sprintf("X-Api-Key header of %d bytes", len(m.header))
	default:
		m.what = "baseline"
	}
	m.path = expand(g.op.Template, params)
	return m
}

// set puts a field in the body, or for reads in the query string.
func (m *mutation) set(op operation, field string, v json.RawMessage) {
	if op.Method == "GET" || op.Method == "LIST" || op.Method == "DELETE" {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		}
		m.query[field] = s
		return
	}
	m.body[field] = v
}

// value picks a hostile value for a field of the given type.
func (g *generator) value(f fieldSpec) (json.RawMessage, string) {
	r := g.rng.IntN(100)
	switch {
	case r < 4:
		if g.rng.IntN(2) == 0 {
			return mustJSON(huge), "huge"
		}
		return mustJSON(hugeUnicode), "huge unicode"
	case r < 20:
		v := wrongTypes[g.rng.IntN(len(wrongTypes))]
		return v, describe(v)
	}
	switch f.Type {
	case "integer", "number":
		if r < 60 {
			v := hostileNumbers[g.rng.IntN(len(hostileNumbers))]
			return v, string(v)
		}
	case "array":
		switch g.rng.IntN(5) {
		case 0:
			return mustJSON([]string{}), "[]"
		case 1:
			l := make([]string, 10000)
			for i := range l {
				l[i] = fmt.Sprintf("s%d", i)
			}
			return mustJSON(l), "10000 elements"
		case 2:
			s := hostileStrings[g.rng.IntN(len(hostileStrings))]
			return mustJSON([]string{"ok", s}), describe(mustJSON([]string{"ok", s}))
		}
	case "object":
		switch g.rng.IntN(4) {
		case 0:
			o := make(map[string]string, 5000)
			for i := 0; i < 5000; i++ {
				o[fmt.Sprintf("k%d", i)] = "v"
			}
			return mustJSON(o), "5000 entries"
		case 1:
			s := hostileStrings[g.rng.IntN(len(hostileStrings))]
			return mustJSON(map[string]string{s: s}), describe(mustJSON(map[string]string{s: s}))
		case 2:
			return json.RawMessage(`{"k":{"nested":[1,2]}}`), "nested object"
		}
	case "boolean":
		if r < 50 {
			v := []string{"maybe", "2", "", "TRUE ", "nil"}[g.rng.IntN(5)]
			return mustJSON(v), describe(mustJSON(v))
		}
	}
	s := hostileStrings[g.rng.IntN(len(hostileStrings))]
	return mustJSON(s), describe(mustJSON(s))
}

func describe(v json.RawMessage) string {
	if len(v) > 40 {
		return fmt.Sprintf("%s… (%d bytes)", v[:30], len(v))
	}
	return string(v)
}

func mustJSON(v interface{}) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// escape makes a baseline path parameter safe in a path.
func escape(s string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F", "?", "%3F", "#", "%23", " ", "%20").Replace(s)
}

func expand(tmpl string, params map[string]string) string {
	return paramRe.ReplaceAllStringFunc(tmpl, func(m string) string {
		return params[m[1:len(m)-1]]
	})
}
