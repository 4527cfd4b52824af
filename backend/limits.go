package backend

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Request limits. Every field of every path is bounded here, in one place,
// before any handler runs: a value too large for Vault's storage (Raft
// refuses an entry above 1 MiB) must be a 400 naming the field, never a 500
// halfway through a change, and no stored record, log entry or alert built
// from request fields may come near that limit. Unknown fields are refused
// here too: Vault's framework only warns about them, so a mistyped field
// (scope= for scopes=) would silently leave a setting unchanged.

// fieldLimit bounds one field. Chars bounds a string, and each entry of a
// list or each value of a map of pairs; Items bounds the number of entries
// of a list or pairs of a map; KeyChars bounds each key of a map of pairs.
type fieldLimit struct {
	Chars    int
	Items    int
	KeyChars int
}

// Limits by kind of field.
const (
	limitName     = 128  // identifiers: names, path segments, ids, filters
	limitText     = 1024 // free text: descriptions, reasons, notes
	limitCursor   = 129  // "<client>/<name>", two names of at most 64 (record.NameRule)
	limitAddress  = 128  // an IP address, with port or zone
	limitCIDR     = 64   // one CIDR block
	limitScalar   = 64   // the text form of a number, duration or boolean
	maxListItems  = 64   // entries of a list field
	maxScopeItems = 128  // scopes of a role, key, request or verify
	maxPairs      = 32   // pairs of a map field (metadata, risk_tiers)
)

// fieldLimits names the fields whose limit differs from the default of
// their type (defaultLimit). A field name means the same thing on every
// path, so one table serves them all.
var fieldLimits = map[string]fieldLimit{
	// free text
	"description":   {Chars: limitText},
	"purpose":       {Chars: limitText},
	"reason":        {Chars: limitText},
	"comment":       {Chars: limitText},
	"note":          {Chars: limitText},
	"justification": {Chars: 2 * limitText},
	"contact":       {Chars: 512},
	"reporter":      {Chars: 256},
	// where a leak was found: a URL or a short excerpt of a log or paste
	// (kept whole in an alert detail and two log entries)
	"source":      {Chars: 2 * limitText},
	"detected_at": {Chars: limitScalar},
	// a key's hard expiry: RFC 3339 or "none" (key_controls.go)
	"expires_at": {Chars: limitScalar},

	// an API key: prefix, environment, up to 1024 bits of base62, checksum
	"key":               {Chars: 512},
	"audience":          {Chars: 256},
	"client_ip":         {Chars: limitAddress},
	"token_issuer":      {Chars: 512},
	"rotation_schedule": {Chars: 256},
	// the scope of a token exchange: scopes separated by spaces
	"scope": {Chars: 8 * limitText},

	"scopes":               {Chars: limitName, Items: maxScopeItems},
	"audiences":            {Chars: 256, Items: maxListItems},
	"bound_cidrs":          {Chars: limitCIDR, Items: maxListItems},
	"issue_bound_cidrs":    {Chars: limitCIDR, Items: maxListItems},
	"allowed_environments": {Chars: limitName, Items: 32},
	"allowed_client_types": {Chars: limitName, Items: 32},
	"kid":                  {Chars: limitName, Items: 32},

	// a key walk's cursor, "<client>/<name>" (keywalk.go): inventory and
	// export pages, a dry run's continuation
	"after":  {Chars: limitCursor},
	"cursor": {Chars: limitCursor},

	"metadata":   {Chars: 512, KeyChars: limitName, Items: maxPairs},
	"risk_tiers": {Chars: limitScalar, KeyChars: 32, Items: maxPairs},
}

// defaultLimit is the limit of a field the table does not name.
func defaultLimit(t framework.FieldType) fieldLimit {
	switch t {
	case framework.TypeString, framework.TypeLowerCaseString, framework.TypeNameString:
		return fieldLimit{Chars: limitName}
	case framework.TypeCommaStringSlice, framework.TypeStringSlice, framework.TypeCommaIntSlice, framework.TypeSlice:
		return fieldLimit{Chars: limitName, Items: maxListItems}
	case framework.TypeKVPairs, framework.TypeMap:
		return fieldLimit{Chars: limitText, KeyChars: limitName, Items: maxPairs}
	default: // numbers, durations, booleans: only their text form
		return fieldLimit{Chars: limitScalar}
	}
}

// limitFor returns the limit of field name with schema f.
func limitFor(name string, f *framework.FieldSchema) fieldLimit {
	if name == "scope" && isList(f.Type) {
		// verify's scopes, each one like a role's
		name = "scopes"
	}
	lim := defaultLimit(f.Type)
	if l, ok := fieldLimits[name]; ok && isTextual(f.Type) {
		lim = l
	}
	return lim
}

func isTextual(t framework.FieldType) bool {
	switch t {
	case framework.TypeString, framework.TypeLowerCaseString, framework.TypeNameString,
		framework.TypeCommaStringSlice, framework.TypeStringSlice, framework.TypeKVPairs, framework.TypeMap:
		return true
	}
	return false
}

func isList(t framework.FieldType) bool {
	switch t {
	case framework.TypeCommaStringSlice, framework.TypeStringSlice, framework.TypeCommaIntSlice, framework.TypeSlice:
		return true
	}
	return false
}

func isPairs(t framework.FieldType) bool {
	return t == framework.TypeKVPairs || t == framework.TypeMap
}

// describe is the limit as the field's help text states it.
func (l fieldLimit) describe(t framework.FieldType) string {
	switch {
	case isPairs(t):
		return fmt.Sprintf("at most %d pairs; keys at most %d characters, values at most %d", l.Items, l.KeyChars, l.Chars)
	case isList(t):
		return fmt.Sprintf("at most %d entries of at most %d characters each", l.Items, l.Chars)
	case isTextual(t):
		return fmt.Sprintf("at most %d characters", l.Chars)
	}
	return ""
}

// pathGuard checks the requests of one path against its limits.
type pathGuard struct {
	re     *regexp.Regexp
	limits map[string]fieldLimit
	schema map[string]*framework.FieldSchema
	// ignoreUnknownOnRead: a path that takes no input ignores query
	// parameters of reads (a JWKS fetcher may add a cache buster).
	ignoreUnknownOnRead bool
	fieldList           string
}

// guardPaths bounds every field of every path (see HandleRequest) and
// states each field's limit in its description, so path-help and the
// OpenAPI document show it. It returns the paths.
func (b *apikeysBackend) guardPaths(paths []*framework.Path) []*framework.Path {
	b.guards = make([]*pathGuard, 0, len(paths))
	for _, p := range paths {
		pattern := p.Pattern
		if !strings.HasPrefix(pattern, "^") {
			pattern = "^" + pattern // as the framework routes
		}
		g := &pathGuard{
			re:                  regexp.MustCompile(pattern),
			limits:              make(map[string]fieldLimit, len(p.Fields)),
			schema:              p.Fields,
			ignoreUnknownOnRead: len(p.Fields) == 0,
		}
		var names []string
		for name, f := range p.Fields {
			lim := limitFor(name, f)
			g.limits[name] = lim
			if d := lim.describe(f.Type); d != "" && !strings.Contains(f.Description, d) {
				f.Description = strings.TrimSpace(f.Description) + " (" + d + ")"
			}
			names = append(names, name)
		}
		sort.Strings(names)
		g.fieldList = strings.Join(names, ", ")
		b.guards = append(b.guards, g)
	}
	return paths
}

// checkRequest refuses a request with an unknown field or a value over
// its limit (an error naming the field), before the framework parses it:
// the framework's own type errors repeat the whole value, and no handler
// may see an oversized one. HandleRequest (guard.go) calls it.
func (b *apikeysBackend) checkRequest(req *logical.Request) error {
	switch req.Operation {
	case logical.ReadOperation, logical.ListOperation, logical.UpdateOperation,
		logical.CreateOperation, logical.DeleteOperation, logical.PatchOperation:
	default:
		return nil // help, lease renew/revoke, rollback: no user fields
	}
	for _, g := range b.guards {
		if g.re.NumSubexp() == 0 {
			// no path segments to check: matching allocates nothing (verify)
			if g.re.MatchString(req.Path) {
				return g.check(req, nil)
			}
		} else if m := g.re.FindStringSubmatch(req.Path); m != nil {
			return g.check(req, m)
		}
	}
	return nil // unsupported path: the framework answers
}

// fieldNameRe is what a field name looks like; anything else sent as a
// field name is not repeated in the error (it may be a pasted secret).
var fieldNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// check refuses unknown fields and values over their limit: the request
// data (body, or query of a read) and the path segments m captured, each
// checked as the field it fills.
func (g *pathGuard) check(req *logical.Request, m []string) error {
	if !(g.ignoreUnknownOnRead && (req.Operation == logical.ReadOperation || req.Operation == logical.ListOperation)) {
		var unknown []string
		hidden := 0
		for k := range req.Data {
			if _, ok := g.schema[k]; ok {
				continue
			}
			if fieldNameRe.MatchString(k) {
				unknown = append(unknown, k)
			} else {
				hidden++
			}
		}
		if len(unknown)+hidden > 0 {
			return g.unknownError(unknown, hidden)
		}
	}
	for i, name := range g.re.SubexpNames() {
		if lim, ok := g.limits[name]; ok && name != "" && i < len(m) {
			if err := checkChars(name, "", m[i], lim.Chars); err != nil {
				return err
			}
		}
	}
	for k, raw := range req.Data {
		f, ok := g.schema[k]
		if !ok {
			continue // ignored (see ignoreUnknownOnRead)
		}
		if err := checkValue(k, f.Type, g.limits[k], raw); err != nil {
			return err
		}
	}
	return nil
}

func (g *pathGuard) unknownError(unknown []string, hidden int) error {
	sort.Strings(unknown)
	if len(unknown) > 5 {
		hidden += len(unknown) - 5
		unknown = unknown[:5]
	}
	var what []string
	for _, u := range unknown {
		what = append(what, fmt.Sprintf("%q", u))
	}
	if hidden > 0 {
		what = append(what, fmt.Sprintf("%d more", hidden))
	}
	accepted := g.fieldList
	if accepted == "" {
		accepted = "none"
	}
	return fmt.Errorf("unknown field %s: this path accepts %s", strings.Join(what, ", "), accepted)
}

// checkValue checks one field's value as sent, in any of the forms the
// framework accepts for its type: a list as a comma-separated string or
// an array, pairs as a map, "k=v" strings or one such string.
func checkValue(name string, t framework.FieldType, lim fieldLimit, raw interface{}) error {
	switch {
	case isList(t):
		var entries []string
		switch v := raw.(type) {
		case string:
			if len(v) > (lim.Chars+1)*lim.Items {
				return fmt.Errorf("%s: at most %d entries of at most %d characters each", name, lim.Items, lim.Chars)
			}
			entries = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		case []interface{}:
			for _, e := range v {
				entries = append(entries, fmt.Sprint(e))
			}
		case []string:
			entries = v
		default:
			entries = []string{fmt.Sprint(v)}
		}
		if len(entries) > lim.Items {
			return fmt.Errorf("%s: at most %d entries (got %d)", name, lim.Items, len(entries))
		}
		for _, e := range entries {
			if err := checkChars(name, "each entry ", e, lim.Chars); err != nil {
				return err
			}
		}
	case isPairs(t):
		var keys, vals []string
		switch v := raw.(type) {
		case map[string]interface{}:
			for k, val := range v {
				keys, vals = append(keys, k), append(vals, fmt.Sprint(val))
			}
		case []interface{}:
			for _, e := range v {
				k, val, _ := strings.Cut(fmt.Sprint(e), "=")
				keys, vals = append(keys, k), append(vals, val)
			}
		default:
			k, val, _ := strings.Cut(fmt.Sprint(v), "=")
			keys, vals = append(keys, k), append(vals, val)
		}
		if len(keys) > lim.Items {
			return fmt.Errorf("%s: at most %d pairs (got %d)", name, lim.Items, len(keys))
		}
		for i := range keys {
			if err := checkChars(name, "each key ", keys[i], lim.KeyChars); err != nil {
				return err
			}
			if err := checkChars(name, "each value ", vals[i], lim.Chars); err != nil {
				return err
			}
		}
	default:
		if s, ok := raw.(string); ok {
			return checkChars(name, "", s, lim.Chars)
		}
		return checkChars(name, "", fmt.Sprint(raw), lim.Chars)
	}
	return nil
}

func checkChars(name, what, s string, max int) error {
	if len(s) <= max { // bytes bound characters from above
		return nil
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%s: %sat most %d characters (got %d)", name, what, max, n)
	}
	return nil
}
