package notify

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckIP(t *testing.T) {
	strict := Policy{}
	open := Policy{AllowLoopback: true, AllowPrivate: true}
	for _, tc := range []struct {
		addr  string
		class string // "" = public, allowed by every policy
		// allowedByOpen: the class is one AllowLoopback/AllowPrivate admit.
		allowedByOpen bool
	}{
		{"93.184.215.14", "", false},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", "", false},
		{"8.8.8.8", "", false},
		{"100.128.0.1", "", false}, // just past CGNAT
		{"172.32.0.1", "", false},  // just past 172.16/12

		{"0.0.0.0", "unspecified address", false},
		{"::", "unspecified address", false},
		{"0.1.2.3", `"this network" address (0.0.0.0/8)`, false},
		{"169.254.0.1", "link-local address", false},
		{"169.254.169.254", "cloud metadata address", false},
		{"fe80::1", "link-local address", false},
		{"fe80::1%eth0", "link-local address", false},
		{"224.0.0.1", "multicast address", false},
		{"239.255.255.250", "multicast address", false},
		{"ff02::1", "multicast address", false},
		{"ff0e::1", "multicast address", false},
		{"255.255.255.255", "broadcast address", false},
		{"240.0.0.1", "reserved address (240.0.0.0/4)", false},
		{"fd00:ec2::254", "cloud metadata address", false},
		{"100.100.100.200", "cloud metadata address", false},
		{"168.63.129.16", "cloud metadata address", false},

		{"127.0.0.1", "loopback address", true},
		{"127.255.255.254", "loopback address", true},
		{"::1", "loopback address", true},

		{"10.0.0.1", "private address", true},
		{"172.16.0.1", "private address", true},
		{"172.31.255.255", "private address", true},
		{"192.168.1.1", "private address", true},
		{"100.64.0.1", "private address", true},
		{"100.127.255.255", "private address", true},
		{"fc00::1", "private address", true},
		{"fd12:3456::1", "private address", true},
		{"fec0::1", "private address", true},
		{"64:ff9b:1::a00:1", "private address", true},

		// IPv6 forms carrying an IPv4 address are judged by it.
		{"::ffff:127.0.0.1", "loopback address", true},
		{"::ffff:169.254.169.254", "cloud metadata address", false},
		{"::ffff:10.0.0.1", "private address", true},
		{"::ffff:0.0.0.0", "unspecified address", false},
		{"::ffff:8.8.8.8", "", false},
		{"::127.0.0.1", "loopback address", true},
		{"::169.254.169.254", "cloud metadata address", false},
		{"::10.1.2.3", "private address", true},
		{"64:ff9b::169.254.169.254", "cloud metadata address", false},
		{"64:ff9b::7f00:1", "loopback address", true},
		{"64:ff9b::8.8.8.8", "", false},
	} {
		ip := netip.MustParseAddr(tc.addr)
		err := strict.CheckIP(ip)
		if tc.class == "" {
			if err != nil {
				t.Errorf("%s: strict policy refused a public address: %v", tc.addr, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.class {
			t.Errorf("%s: strict policy: %v, want %q", tc.addr, err, tc.class)
		}
		var ref *RefusedError
		if !errors.As(err, &ref) {
			t.Errorf("%s: error %T is not a *RefusedError", tc.addr, err)
		}
		err = open.CheckIP(ip)
		if tc.allowedByOpen && err != nil {
			t.Errorf("%s: loopback+private policy refused: %v", tc.addr, err)
		}
		if !tc.allowedByOpen && err == nil {
			t.Errorf("%s: loopback+private policy allowed a %s", tc.addr, tc.class)
		}
	}
	if err := strict.CheckIP(netip.Addr{}); err == nil {
		t.Error("the zero Addr was allowed")
	}
	// Each allowance admits only its own class.
	if (Policy{AllowLoopback: true}).CheckIP(netip.MustParseAddr("10.0.0.1")) == nil {
		t.Error("AllowLoopback admitted a private address")
	}
	if (Policy{AllowPrivate: true}).CheckIP(netip.MustParseAddr("127.0.0.1")) == nil {
		t.Error("AllowPrivate admitted a loopback address")
	}
}

func TestCheckURL(t *testing.T) {
	const token = "s3cr3t-t0ken"
	for _, tc := range []struct {
		name   string
		policy Policy
		url    string
		want   string // "" = valid; else the error must contain it
	}{
		{"https", Policy{}, "https://hooks.example.com/in?token=" + token, ""},
		{"https port", Policy{}, "https://hooks.example.com:8443/x", ""},
		{"upper-case scheme", Policy{}, "HTTPS://hooks.example.com/", ""},
		{"public ip", Policy{}, "https://93.184.215.14/x", ""},
		{"public ipv6", Policy{}, "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x", ""},
		{"http allowed", Policy{AllowHTTP: true}, "http://hooks.example.com/", ""},
		{"loopback allowed", Policy{AllowHTTP: true, AllowLoopback: true}, "http://127.0.0.1:8080/", ""},
		{"localhost name", Policy{}, "https://localhost/", ""}, // refused when dialed

		{"empty", Policy{}, "", "url: is empty"},
		{"http", Policy{}, "http://hooks.example.com/?token=" + token, "url: scheme must be https"},
		{"ftp", Policy{AllowHTTP: true}, "ftp://hooks.example.com/", "url: scheme must be https or http"},
		{"relative", Policy{}, "/hooks?token=" + token, "url: must be absolute"},
		{"no scheme", Policy{}, "hooks.example.com/in", "url: must be absolute"},
		{"opaque", Policy{}, "https:hooks.example.com", "url: must be absolute"},
		{"userinfo", Policy{}, "https://user:" + token + "@hooks.example.com/", "url: must not contain credentials"},
		{"user only", Policy{}, "https://" + token + "@hooks.example.com/", "url: must not contain credentials"},
		{"fragment", Policy{}, "https://hooks.example.com/#" + token, "url: must not have a fragment"},
		{"empty fragment", Policy{}, "https://hooks.example.com/#", "url: must not have a fragment"},
		{"no host", Policy{}, "https:///path?token=" + token, "url: has no host"},
		{"port only", Policy{}, "https://:443/", "url: has no host"},
		{"bad port", Policy{}, "https://hooks.example.com:99999/", "url: has an invalid port"},
		{"port zero", Policy{}, "https://hooks.example.com:0/", "url: has an invalid port"},
		{"too long", Policy{}, "https://hooks.example.com/?t=" + strings.Repeat("a", 2048), "url: is longer than 2048 characters"},
		{"unparsable", Policy{}, "https://hooks.example.com/%zz?token=" + token, "url: is not a valid URL"},
		{"control char", Policy{}, "https://hooks.example.com/\x00?token=" + token, "url: is not a valid URL"},
		{"escaped host", Policy{}, "https://hooks!x.example.com/", "url: host is not a valid host name"},
		{"loopback", Policy{}, "https://127.0.0.1/?token=" + token, "url: host is a loopback address"},
		{"loopback http", Policy{AllowHTTP: true}, "http://127.0.0.1:8080/", "url: host is a loopback address"},
		{"ipv6 loopback", Policy{}, "https://[::1]/", "url: host is a loopback address"},
		{"mapped loopback", Policy{}, "https://[::ffff:127.0.0.1]/", "url: host is a loopback address"},
		{"metadata", Policy{AllowHTTP: true, AllowLoopback: true, AllowPrivate: true}, "http://169.254.169.254/latest/meta-data/", "url: host is a cloud metadata address"},
		{"private", Policy{}, "https://10.0.0.1/", "url: host is a private address"},
		{"zoned link-local", Policy{}, "https://[fe80::1%25eth0]/", "url: host is a link-local address"},
		{"unspecified", Policy{}, "https://0.0.0.0/", "url: host is an unspecified address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.CheckURL(tc.url)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckURL = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL = nil, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("CheckURL = %q, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "example.com") {
				t.Fatalf("CheckURL error %q repeats the URL", err)
			}
			var ref *RefusedError
			if !errors.As(err, &ref) {
				t.Fatalf("error %T is not a *RefusedError", err)
			}
		})
	}
}
