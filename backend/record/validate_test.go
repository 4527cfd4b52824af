package record

import (
	"testing"
)

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs("bound_cidrs", []string{"10.1.2.3/8", " 192.0.2.7 ", "", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := ParseCIDRs("bound_cidrs", []string{bad}); err == nil {
			t.Errorf("ParseCIDRs(%q) accepted a bad block", bad)
		}
	}
}

func TestIPAllowed(t *testing.T) {
	cidrs := []string{"10.0.0.0/8", "192.0.2.7/32"}
	cases := map[string]bool{
		"10.9.8.7":        true,
		"10.9.8.7:4431":   true,
		"192.0.2.7":       true,
		"192.0.2.8":       false,
		"::ffff:10.0.0.1": true,
		"not-an-ip":       false,
		"":                false,
	}
	for addr, want := range cases {
		if got := IPAllowed(cidrs, addr); got != want {
			t.Errorf("IPAllowed(%q) = %v, want %v", addr, got, want)
		}
	}
	if !IPAllowed(nil, "anything") {
		t.Error("an empty list must allow every address")
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"svc-orders": true, "a": true, "A.b_c-9": true,
		"": false, "-lead": false, "has/slash": false, "has space": false,
		"x1234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if err := ValidateName("client", name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
