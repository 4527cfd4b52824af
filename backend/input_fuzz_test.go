package backend

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-secure-stdlib/parseutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// FuzzCIDRs fuzzes the CIDR lists of clients and roles (bound_cidrs,
// issue_bound_cidrs) together with the address a verify or issuance comes
// from. A refused list names its field; an accepted list is canonical
// (masked prefixes that parse back to themselves); and an address is
// allowed exactly when some block holds it, whichever of its two spellings
// (IPv4 or IPv4-mapped IPv6) the block or the caller used.
func FuzzCIDRs(f *testing.F) {
	for _, c := range [][2]string{
		{"10.0.0.0/8", "10.1.2.3"},
		{"10.1.2.3/8, 192.0.2.7", "192.0.2.7:4431"},
		{"2001:db8::/32", "[2001:db8::1]:443"},
		{"::ffff:10.0.0.0/104", "10.0.0.1"},
		{"10.0.0.0/8", "::ffff:10.0.0.1"},
		{"0.0.0.0/0", "not-an-ip"},
		{"::/0", "127.0.0.1"},
		{"10.0.0.0/33", "10.0.0.1"},
		{"fe80::/10", "fe80::1%eth0"},
		{"1.2.3", ""},
		{",, ,", "1.1.1.1"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, list, addr string) {
		out, err := record.ParseCIDRs("bound_cidrs", strings.Split(list, ","))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bound_cidrs: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		var blocks []netip.Prefix
		for _, s := range out {
			p, err := netip.ParsePrefix(s)
			if err != nil || p != p.Masked() || p.String() != s {
				t.Fatalf("record.ParseCIDRs(%q) stored %q, not a canonical block", list, s)
			}
			blocks = append(blocks, p)
		}
		again, err := record.ParseCIDRs("bound_cidrs", out)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("stored blocks %q parse back as %q, %v", out, again, err)
		}
		allowed := record.IPAllowed(out, addr)
		if len(out) == 0 {
			if !allowed {
				t.Fatalf("an empty list refused %q", addr)
			}
			return
		}
		ip, ok := record.ParseIP(addr)
		if !ok || ip.Zone() != "" {
			// Unparsable addresses are refused; zoned ones are left to
			// the implementation (refusing them is safe).
			if !ok && allowed {
				t.Fatalf("%q is not an address but was allowed by %q", addr, out)
			}
			return
		}
		spellings := []netip.Addr{ip}
		if ip.Is4() {
			spellings = append(spellings, netip.AddrFrom16(ip.As16()))
		}
		want := false
		for _, p := range blocks {
			for _, a := range spellings {
				want = want || p.Contains(a)
			}
		}
		if allowed != want {
			t.Fatalf("record.IPAllowed(%q, %q) = %v, but the address is in a block: %v", out, addr, allowed, want)
		}
	})
}

// durationFields are the role fields given as durations.
var durationFields = []string{"rotation_period", "grace_period", "max_grace_period", "key_lifetime", "ttl", "max_ttl", "idle_timeout", "rate_limit_window", "rotation_window"}

// FuzzRoleDurations writes a role with arbitrary text in one duration field
// (and optionally a rotation_schedule), through the backend's own request
// handling as Vault calls it. The plugin must answer with a result or a
// user error, never an internal error (a 500 in Vault); an accepted value
// reads back as what the SDK parsed it to, in whole seconds; a refused
// write leaves the role exactly as it was.
func FuzzRoleDurations(f *testing.F) {
	for _, c := range [][3]string{
		{"rotation_period", "1h", ""},
		{"rotation_period", "90d", ""},
		{"rotation_period", "9223372036854775807", ""},
		{"rotation_period", "-1", ""},
		{"grace_period", "1.5s", ""},
		{"grace_period", "1e3", ""},
		{"max_grace_period", "2562047h", ""},
		{"ttl", "\x00", ""},
		{"max_ttl", "99999999999d", ""},
		{"idle_timeout", "5m", ""},
		{"rate_limit_window", "0", ""},
		{"rotation_window", "3m", "0 3 * * *"},
		{"rotation_window", "1m", "@every 1m"},
		{"key_lifetime", "720h", "TZ="},
		{"rotation_window", "", "CRON_TZ=Europe/Berlin 30 2 * * *"},
	} {
		f.Add(c[0], c[1], c[2])
	}
	env := newFuzzEnv(f)
	base := map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "24h", "grace_period": "1h"}
	if _, err := env.request(logical.CreateOperation, "roles/r", base); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, field, value, cron string) {
		if !slices.Contains(durationFields, field) {
			field = durationFields[len(field)%len(durationFields)]
		}
		before := env.read(t, "roles/r")
		data := map[string]interface{}{}
		if cron != "" {
			data["rotation_schedule"] = cron
			data["rotation_period"] = "0"
		}
		data[field] = value
		resp, err := env.request(logical.UpdateOperation, "roles/r", data)
		if err != nil {
			t.Fatalf("%s=%q rotation_schedule=%q: internal error %v", field, value, cron, err)
		}
		after := env.read(t, "roles/r")
		if resp != nil && resp.IsError() {
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused write changed the role: %v -> %v", before, after)
			}
			return
		}
		d, err := parseutil.ParseDurationSecond(value)
		if err != nil {
			t.Fatalf("%s=%q was accepted but does not parse: %v", field, value, err)
		}
		want := int64(d.Seconds())
		got, ok := after[field].(int64)
		switch {
		case !ok:
			t.Fatalf("%s reads back as %v (%T)", field, after[field], after[field])
		case field == "rate_limit_window" && want == 0:
			// 0 selects the default window.
		case field == "rotation_period" && (cron != "" || want == 0):
			// A schedule, or no period, rotates by the risk tier's period.
		case field == "rotation_window" && want > 0 && want < 120:
			t.Fatalf("rotation_window %q accepted below the minimum", value)
		case got != want:
			t.Fatalf("%s=%q reads back as %d, want %d", field, value, got, want)
		}
		// Put the role back to a known state for the next input.
		if resp, err := env.request(logical.UpdateOperation, "roles/r", map[string]interface{}{
			"rotation_schedule": "", "rotation_window": "0", "rotation_period": "24h", "grace_period": "1h",
			"max_grace_period": "1h", "key_lifetime": "0", "ttl": "0", "max_ttl": "0", "idle_timeout": "0", "rate_limit_window": "0",
		}); err != nil || (resp != nil && resp.IsError()) {
			t.Fatalf("resetting the role: %v %v", resp, err)
		}
	})
}

// FuzzRiskTiers writes the mount's risk_tiers with an arbitrary duration.
// As for roles: a result or a user error, never an internal error; an
// accepted tier reads back in whole seconds as parsed, or the write is
// refused and the configuration reads back unchanged.
func FuzzRiskTiers(f *testing.F) {
	for _, c := range [][2]string{
		{"low", "180d"}, {"high", "720h"}, {"x", "-1d"}, {"x", "1e9d"}, {"x", "9223372036854775807"},
		{"x", ""}, {"", "1d"}, {"a=b", "1h"}, {"x", "1.5h"}, {"x", "\x00"},
	} {
		f.Add(c[0], c[1])
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, tier, value string) {
		if strings.Contains(tier, "=") {
			return // the key=value syntax has no way to carry it
		}
		before := env.read(t, "config")
		tiers := map[string]interface{}{"low": "180d", "medium": "90d", "high": "30d", "critical": "7d"}
		tiers[tier] = value
		resp, err := env.request(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": tiers})
		if err != nil {
			t.Fatalf("risk_tiers %q=%q: internal error %v", tier, value, err)
		}
		after := env.read(t, "config")
		if resp != nil && resp.IsError() {
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused write changed the configuration: %v -> %v", before, after)
			}
			return
		}
		d, err := parseutil.ParseDurationSecond(value)
		if err != nil {
			t.Fatalf("risk tier %q=%q was accepted but does not parse: %v", tier, value, err)
		}
		stored, _ := after["risk_tiers"].(map[string]int64)
		if got, ok := stored[tier]; !ok || got != int64(d.Seconds()) {
			t.Fatalf("risk tier %q=%q reads back as %v, want %d", tier, value, stored, int64(d.Seconds()))
		}
	})
}

// fuzzEnv is one backend over in-memory storage shared by a fuzz target's
// inputs: setting up a backend per input would dwarf the work under test.
type fuzzEnv struct {
	b       *apikeysBackend
	storage logical.Storage
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	b := newBackend(clock.NewFake(testStart))
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      logical.TestSystemView(),
		StorageView: &logical.InmemStorage{},
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		f.Fatal(err)
	}
	return &fuzzEnv{b: b, storage: conf.StorageView}
}

// request runs op on path as Vault would: a write is a create or an update
// as the path's existence check says.
func (f *fuzzEnv) request(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	ctx := context.Background()
	req := &logical.Request{
		Operation:  op,
		Path:       path,
		Data:       data,
		Storage:    f.storage,
		EntityID:   "entity-fuzz",
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		if exists, found, err := f.b.HandleExistenceCheck(ctx, req); err == nil && found {
			req.Operation = logical.CreateOperation
			if exists {
				req.Operation = logical.UpdateOperation
			}
		}
	}
	return f.b.HandleRequest(ctx, req)
}

func (f *fuzzEnv) read(t *testing.T, path string) map[string]interface{} {
	t.Helper()
	resp, err := f.request(logical.ReadOperation, path, nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("read %s: %v %v", path, resp, err)
	}
	return resp.Data
}

// A block written in IPv4-mapped IPv6 form holds the IPv4 addresses it
// maps, and an IPv6 block holding mapped addresses holds their IPv4 form:
// the caller's address is unmapped before the check, so a block compared
// only in its written form would refuse every address in it.
func TestIPAllowedMappedBlocks(t *testing.T) {
	for _, c := range []struct {
		block, addr string
		want        bool
	}{
		{"::ffff:10.0.0.0/104", "10.1.2.3", true},
		{"::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true},
		{"::ffff:10.0.0.0/104", "[::ffff:10.1.2.3]:443", true},
		{"::ffff:10.0.0.0/104", "11.0.0.1", false},
		{"10.0.0.0/8", "::ffff:10.1.2.3", true},
		{"2001:db8::/32", "10.1.2.3", false},
	} {
		cidrs, err := record.ParseCIDRs("bound_cidrs", []string{c.block})
		if err != nil {
			t.Fatal(err)
		}
		if got := record.IPAllowed(cidrs, c.addr); got != c.want {
			t.Errorf("record.IPAllowed(%q, %q) = %v, want %v", cidrs, c.addr, got, c.want)
		}
	}
}
