package notify

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Policy says which destinations a webhook may be delivered to. The zero
// Policy is the production one: https only, public addresses only.
type Policy struct {
	AllowHTTP     bool // http:// URLs allowed (otherwise https only)
	AllowLoopback bool // 127.0.0.0/8 and ::1 allowed (testing)
	AllowPrivate  bool // RFC 1918, 100.64.0.0/10 (CGNAT), fc00::/7, fec0::/10, 64:ff9b:1::/48 allowed
}

// maxURLLen bounds a destination URL.
const maxURLLen = 2048

// RefusedError is a destination refused by Policy: it names the class of
// address or the URL rule, never the URL itself.
type RefusedError struct {
	Reason string // e.g. "link-local address", "scheme must be https"
}

func (e *RefusedError) Error() string { return e.Reason }

func refused(reason string) error { return &RefusedError{Reason: reason} }

// CheckURL validates a destination URL before anything is dialed:
// absolute, https (or http with AllowHTTP), a host, no userinfo, no
// fragment, at most 2048 characters; a host that is an IP literal must
// pass CheckIP. A host name is checked again, address by address, when it
// is dialed. Errors start with "url: " and never repeat the URL, whose
// query may hold a token.
func (p Policy) CheckURL(raw string) error {
	if err := p.checkURL(raw); err != nil {
		return refused("url: " + err.Error())
	}
	return nil
}

func (p Policy) checkURL(raw string) error {
	if raw == "" {
		return refused("is empty")
	}
	if len(raw) > maxURLLen {
		return refused("is longer than 2048 characters")
	}
	// url.Parse's own errors quote the input, so only its verdict is used.
	u, err := url.Parse(raw)
	if err != nil {
		return refused("is not a valid URL")
	}
	if u.Scheme == "" || u.Opaque != "" {
		return refused("must be absolute, like https://host/path")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case p.AllowHTTP:
		return refused("scheme must be https or http")
	default:
		return refused("scheme must be https")
	}
	if u.User != nil {
		return refused("must not contain credentials (user:password@)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return refused("must not have a fragment (#...)")
	}
	host := u.Hostname()
	if host == "" {
		return refused("has no host")
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return refused("has an invalid port")
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckIP(ip); err != nil {
			return refused("host is " + withArticle(err.Error()))
		}
		return nil
	}
	if !validHostname(host) {
		return refused("host is not a valid host name")
	}
	return nil
}

// validHostname accepts DNS names (letters, digits, '-', '_', dots), which
// keeps percent-escapes and other oddities from reaching the resolver.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	siteLocal6  = netip.MustParsePrefix("fec0::/10")
	broadcast4  = netip.MustParseAddr("255.255.255.255")
	// Embedded IPv4: IPv4-compatible (::a.b.c.d, deprecated but still
	// routed by some stacks) and the well-known NAT64 prefix, through which
	// a gateway would reach the embedded IPv4 address.
	compat6 = netip.MustParsePrefix("::/96")
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	// The NAT64 local-use prefix places the IPv4 address where the
	// operator chose, so it is judged as a whole: a private range.
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48")
	metadataAddr = map[netip.Addr]bool{
		netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OCI, DigitalOcean, ...
		netip.MustParseAddr("fd00:ec2::254"):   true, // AWS over IPv6
		netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
		netip.MustParseAddr("168.63.129.16"):   true, // Azure host endpoint (WireServer), a public address
	}
)

// CheckIP classifies an address a destination resolved to. Always refused:
// unspecified, 0.0.0.0/8, link-local (which holds the usual cloud metadata
// address 169.254.169.254), multicast, 240.0.0.0/4 with the broadcast
// address, and the other cloud metadata addresses; loopback unless
// AllowLoopback; private ranges (RFC 1918, CGNAT, ULA, site-local) unless
// AllowPrivate. An IPv6 address carrying an IPv4 one (mapped, compatible,
// NAT64) is judged by that IPv4 address. The error names the class.
func (p Policy) CheckIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return refused("invalid address")
	}
	ip = embeddedIPv4(ip.WithZone(""))
	switch {
	case metadataAddr[ip]:
		return refused("cloud metadata address")
	case ip.IsUnspecified():
		return refused("unspecified address")
	case ip.Is4() && thisNetwork.Contains(ip):
		return refused(`"this network" address (0.0.0.0/8)`)
	case ip == broadcast4:
		return refused("broadcast address")
	case ip.Is4() && reserved4.Contains(ip):
		return refused("reserved address (240.0.0.0/4)")
	case ip.IsLinkLocalUnicast():
		return refused("link-local address")
	case ip.IsMulticast():
		return refused("multicast address")
	case ip.IsLoopback():
		if !p.AllowLoopback {
			return refused("loopback address")
		}
	case ip.IsPrivate() || cgnat.Contains(ip) || siteLocal6.Contains(ip) || nat64Local.Contains(ip):
		if !p.AllowPrivate {
			return refused("private address")
		}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for
// (IPv4-mapped, IPv4-compatible, NAT64), else ip unchanged. :: and ::1 are
// IPv6's own unspecified and loopback addresses, not compatible forms.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if !ip.Is6() {
		return ip
	}
	if ip.Is4In6() {
		return ip.Unmap()
	}
	if ip.IsUnspecified() || ip.IsLoopback() {
		return ip
	}
	if compat6.Contains(ip) || nat64.Contains(ip) {
		b := ip.As16()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return ip
}

func withArticle(class string) string {
	if class != "" && strings.ContainsRune("aeiou", rune(class[0])) {
		return "an " + class
	}
	return "a " + class
}
