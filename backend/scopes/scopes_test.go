package scopes

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		in      string
		ok      bool
		errText string // substring expected in the error
	}{
		{"orders:read", true, ""},
		{"orders:*", true, ""},
		{"*", true, ""},
		{"billing:invoices:write", true, ""},
		{"billing:invoices:*", true, ""},
		{"Admin_1.v2/x-y", true, ""},
		{"a", true, ""},
		{strings.Repeat("a", MaxLen), true, ""},
		{strings.Repeat("a", MaxLen-2) + ":*", true, ""},

		{"", false, "empty"},
		{strings.Repeat("a", MaxLen+1), false, "at most 128"},
		{"ord*", false, "last segment"},
		{"*:read", false, "last segment"},
		{"orders:*:read", false, "last segment"},
		{"**", false, "last segment"},
		{"orders:**", false, "last segment"},
		{"orders/*", false, "last segment"},
		{"orders:re*d", false, "last segment"},
		{"orders read", false, "only letters"},
		{" orders", false, "only letters"},
		{"orders,read", false, "only letters"},
		{"orders:réad", false, "only letters"},
		{"orders\n", false, "only letters"},
		{"orders\x00", false, "only letters"},
		{"orders?", false, "only letters"},
		{"\xff", false, "only letters"},
	}
	for _, tc := range cases {
		err := Validate(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err == nil {
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.errText) {
			t.Errorf("Validate(%q) error %q does not contain %q", tc.in, msg, tc.errText)
		}
		// The scope must be named, but long input must not be echoed whole.
		if len(tc.in) <= MaxLen && !strings.Contains(msg, fmt.Sprintf("%q", tc.in)) {
			t.Errorf("Validate(%q) error %q does not name the scope", tc.in, msg)
		}
		if len(msg) > 400 {
			t.Errorf("Validate error is unreasonably long (%d bytes)", len(msg))
		}
	}

	// Very long input is rejected cheaply and not echoed back in full.
	err := Validate(strings.Repeat("x", 1<<20))
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("Validate(huge) = %v", err)
	}
}

func TestValidateAll(t *testing.T) {
	cases := []struct {
		in      []string
		ok      bool
		errText string
	}{
		{nil, true, ""},
		{[]string{}, true, ""},
		{[]string{"orders:read", "orders:*", "*"}, true, ""},
		{[]string{"orders:read", "ord*", "x y"}, false, `"ord*"`},
		{[]string{"orders:read", ""}, false, "empty"},
	}
	for _, tc := range cases {
		err := ValidateAll(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateAll(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.errText) {
			t.Errorf("ValidateAll(%q) error %q does not contain %q", tc.in, err, tc.errText)
		}
	}
}

func TestMatches(t *testing.T) {
	cases := []struct {
		pattern, scope string
		want           bool
	}{
		{"*", "orders:read", true},
		{"*", "*", true},
		{"*", "orders:*", true},
		{"*", "", true},

		{"orders:*", "orders:read", true},
		{"orders:*", "orders:x:y", true},
		{"orders:*", "orders:*", true},
		{"orders:*", "orders:x:*", true},
		{"orders:*", "orders", false},
		{"orders:*", "orders:", false},
		{"orders:*", "ordersx:read", false},
		{"orders:*", "orders_x:read", false},
		{"orders:*", "billing:read", false},
		{"orders:*", "*", false},
		{"orders:*", "Orders:read", false},

		{"billing:invoices:*", "billing:invoices:write", true},
		{"billing:invoices:*", "billing:payments:write", false},
		{"billing:invoices:*", "billing:*", false},

		{"orders:read", "orders:read", true},
		{"orders:read", "orders:reads", false},
		{"orders:read", "orders:rea", false},
		{"orders:read", "orders:*", false},
		{"orders:read", "ORDERS:READ", false},

		// Malformed patterns only match themselves; no accidental wildcards.
		{"ord*", "orders:read", false},
		{"ord*", "ord*", true},
		{"*:read", "orders:read", false},
		{"", "", true},
		{"", "orders", false},
	}
	for _, tc := range cases {
		if got := Matches(tc.pattern, tc.scope); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.pattern, tc.scope, got, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		allowed []string
		scope   string
		want    bool
	}{
		{nil, "orders:read", false},
		{[]string{}, "*", false},
		{[]string{"orders:read"}, "orders:read", true},
		{[]string{"orders:read"}, "orders:write", false},
		{[]string{"billing:*", "orders:read"}, "orders:read", true},
		{[]string{"orders:*"}, "orders:read", true},
		{[]string{"*"}, "anything:at:all", true},
		// A wildcard is covered only by an equal or broader wildcard.
		{[]string{"orders:read", "orders:write"}, "orders:*", false},
		{[]string{"orders:*"}, "orders:*", true},
		{[]string{"*"}, "orders:*", true},
		{[]string{"orders:x:*"}, "orders:*", false},
		{[]string{"orders:*"}, "*", false},
		{[]string{"*"}, "*", true},
	}
	for _, tc := range cases {
		if got := Covers(tc.allowed, tc.scope); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.allowed, tc.scope, got, tc.want)
		}
	}
}

func TestOutside(t *testing.T) {
	cases := []struct {
		name               string
		requested, allowed []string
		want               []string
	}{
		{"nothing requested", nil, []string{"*"}, nil},
		{"all covered", []string{"orders:read", "orders:write"}, []string{"orders:*"}, nil},
		{"wildcard role", []string{"a", "b:*", "*"}, []string{"*"}, nil},
		{"nothing allowed", []string{"b", "a"}, nil, []string{"b", "a"}},
		{"some outside, order kept",
			[]string{"z:read", "orders:read", "a:read"}, []string{"orders:*"},
			[]string{"z:read", "a:read"}},
		{"duplicates reported once",
			[]string{"x", "y", "x", "orders:read", "y"}, []string{"orders:read"},
			[]string{"x", "y"}},
		{"wildcard wider than role",
			[]string{"orders:*"}, []string{"orders:read", "orders:write"},
			[]string{"orders:*"}},
		{"global wildcard requested", []string{"*"}, []string{"orders:*"}, []string{"*"}},
		{"prefix lookalike", []string{"ordersx:read"}, []string{"orders:*"}, []string{"ordersx:read"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Outside(tc.requested, tc.allowed); !slices.Equal(got, tc.want) {
				t.Errorf("Outside(%q, %q) = %q, want %q", tc.requested, tc.allowed, got, tc.want)
			}
		})
	}
}

func TestIntersect(t *testing.T) {
	cases := []struct {
		name      string
		key, role []string
		want      []string
	}{
		{"empty key", nil, []string{"*"}, nil},
		{"empty role", []string{"orders:read"}, nil, nil},
		{"exact", []string{"orders:read"}, []string{"orders:read"}, []string{"orders:read"}},
		{"covered by role wildcard", []string{"orders:read"}, []string{"orders:*"}, []string{"orders:read"}},
		{"role narrowed: dropped scope disappears",
			[]string{"orders:read", "orders:write"}, []string{"orders:read"},
			[]string{"orders:read"}},
		{"role narrowed below key wildcard",
			[]string{"orders:*"}, []string{"orders:read", "orders:write", "billing:read"},
			[]string{"orders:read", "orders:write"}},
		{"role narrowed to nested wildcard",
			[]string{"orders:*"}, []string{"orders:x:*"},
			[]string{"orders:x:*"}},
		{"key global wildcard takes role",
			[]string{"*"}, []string{"b:*", "a"},
			[]string{"a", "b:*"}},
		{"role widened: key not widened",
			[]string{"orders:read"}, []string{"*"},
			[]string{"orders:read"}},
		{"role widened under key wildcard",
			[]string{"orders:*"}, []string{"*"},
			[]string{"orders:*"}},
		{"disjoint", []string{"orders:read"}, []string{"billing:*"}, nil},
		{"prefix lookalike not granted",
			[]string{"orders:*"}, []string{"ordersx:read"}, nil},
		{"deduplicated and sorted",
			[]string{"orders:write", "orders:*", "orders:read", "orders:read"},
			[]string{"orders:read", "orders:write"},
			[]string{"orders:read", "orders:write"}},
		{"both wildcards", []string{"*"}, []string{"*"}, []string{"*"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, role := slices.Clone(tc.key), slices.Clone(tc.role)
			got := Intersect(tc.key, tc.role)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Intersect(%q, %q) = %q, want %q", tc.key, tc.role, got, tc.want)
			}
			if !slices.Equal(key, tc.key) || !slices.Equal(role, tc.role) {
				t.Errorf("Intersect modified its inputs")
			}
		})
	}
}

// TestIntersectProperties checks, over random combinations of a small scope
// universe, that effective scopes never exceed either the key's or the
// role's grants, and that nothing both sides grant is lost.
func TestIntersectProperties(t *testing.T) {
	universe := []string{
		"*", "orders:*", "orders:read", "orders:write", "orders:x:*",
		"orders:x:y", "ordersx:read", "billing:*", "billing:read", "orders",
	}
	r := rand.New(rand.NewPCG(7, 11))
	pick := func() []string {
		var out []string
		for _, s := range universe {
			if r.IntN(3) == 0 {
				out = append(out, s)
			}
		}
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	for i := 0; i < 2000; i++ {
		key, role := pick(), pick()
		got := Intersect(key, role)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("Intersect(%q, %q) = %q not sorted/unique", key, role, got)
		}
		for _, s := range got {
			if !Covers(key, s) || !Covers(role, s) {
				t.Fatalf("Intersect(%q, %q) = %q grants %q beyond an input", key, role, got, s)
			}
		}
		// Any concrete scope granted by both sides is still granted.
		for _, s := range universe {
			if strings.HasSuffix(s, "*") {
				continue
			}
			if Covers(key, s) && Covers(role, s) && !Covers(got, s) {
				t.Fatalf("Intersect(%q, %q) = %q lost %q", key, role, got, s)
			}
		}
	}
}

func TestWidened(t *testing.T) {
	cases := []struct {
		name     string
		old, new []string
		want     []string
	}{
		{"unchanged", []string{"orders:read"}, []string{"orders:read"}, nil},
		{"narrowed", []string{"orders:*"}, []string{"orders:read"}, nil},
		{"removed everything", []string{"orders:*"}, nil, nil},
		{"added scope", []string{"orders:read"}, []string{"orders:read", "orders:write"}, []string{"orders:write"}},
		{"to wildcard", []string{"orders:read", "orders:write"}, []string{"orders:*"}, []string{"orders:*"}},
		{"to global", []string{"orders:*"}, []string{"*"}, []string{"*"}},
		{"from nothing", nil, []string{"b", "a", "b"}, []string{"b", "a"}},
		{"from global", []string{"*"}, []string{"anything", "x:*"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Widened(tc.old, tc.new); !slices.Equal(got, tc.want) {
				t.Errorf("Widened(%q, %q) = %q, want %q", tc.old, tc.new, got, tc.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{}, nil},
		{[]string{"", "  ", "\t"}, nil},
		{[]string{"b", "a"}, []string{"a", "b"}},
		{[]string{" orders:read ", "orders:read", "\torders:write\n"}, []string{"orders:read", "orders:write"}},
		{[]string{"*", "a:*", "a", "*"}, []string{"*", "a", "a:*"}},
		// Not a validator: odd but non-empty entries survive.
		{[]string{"x y", "ord*"}, []string{"ord*", "x y"}},
	}
	for _, tc := range cases {
		in := slices.Clone(tc.in)
		got := Normalize(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Normalize modified its input")
		}
	}
}

func TestJoin(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"orders:read", "orders:*", "*"}, "orders:read orders:* *"},
	}
	for _, tc := range cases {
		if got := Join(tc.in); got != tc.want {
			t.Errorf("Join(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{",,, ,", nil},
		{"orders:read", []string{"orders:read"}},
		{"orders:read orders:write", []string{"orders:read", "orders:write"}},
		{"orders:read,orders:write", []string{"orders:read", "orders:write"}},
		{" a , b,,c  d\te\nf ", []string{"a", "b", "c", "d", "e", "f"}},
		{"b a b", []string{"b", "a", "b"}}, // no dedup or sort: that is Normalize's job
	}
	for _, tc := range cases {
		if got := Split(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJoinSplitRoundTrip(t *testing.T) {
	in := []string{"*", "billing:invoices:write", "orders:*", "orders:read"}
	if got := Split(Join(in)); !slices.Equal(got, in) {
		t.Errorf("Split(Join(%q)) = %q", in, got)
	}
}
