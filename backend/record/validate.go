package record

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// NameRe bounds client, role and key names: they appear in paths, storage
// keys and audit logs, so a small safe charset keeps them unambiguous.
var NameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

const NameRule = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

func ValidateName(kind, name string) error {
	if keyformat.LooksLikeKey(name) {
		// Likely a key pasted into the wrong field: refused, and not
		// repeated in the answer (names are echoed and logged freely).
		return fmt.Errorf("%s name looks like an API key and is refused (it is not repeated here); use %s", kind, NameRule)
	}
	if !NameRe.MatchString(name) {
		return fmt.Errorf("%s name %q is invalid: use %s", kind, name, NameRule)
	}
	return nil
}

// ParseCIDRs validates a list of CIDR blocks (a bare IP means a /32 or /128).
func ParseCIDRs(field string, raw []string) ([]string, error) {
	var out []string
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			if ip, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
				continue
			}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR block (e.g. 10.0.0.0/8 or 192.0.2.7)", field, s)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

// IPAllowed reports whether addr lies in one of cidrs; an empty list allows
// every address. An unparsable address is never allowed by a non-empty list.
func IPAllowed(cidrs []string, addr string) bool {
	if len(cidrs) == 0 {
		return true
	}
	ip, ok := ParseIP(addr)
	if !ok {
		return false
	}
	// An IPv4 address and its IPv4-mapped IPv6 form are one address, and
	// a block may be written in either form (::ffff:10.0.0.0/104 is
	// 10.0.0.0/8): try both, or a block written the IPv6 way would refuse
	// every address it holds.
	mapped := ip
	if ip.Is4() {
		mapped = netip.AddrFrom16(ip.As16())
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && (p.Contains(ip) || p.Contains(mapped)) {
			return true
		}
	}
	return false
}

// ParseIP reads an address as callers send it: a bare IP, or host:port.
// IPv4-mapped IPv6 addresses are unmapped so they match IPv4 CIDRs.
func ParseIP(addr string) (netip.Addr, bool) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
