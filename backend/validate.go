package backend

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// nameRe bounds client, role and key names: they appear in paths, storage
// keys and audit logs, so a small safe charset keeps them unambiguous.
var nameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

const nameRule = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

// namePattern is the path segment regex for names; the handler validates
// with nameRe so a bad name gets a clear 400 rather than "unsupported path".
func namePattern(field string) string { return framework.GenericNameRegex(field) }

func validateName(kind, name string) error {
	if keyformat.LooksLikeKey(name) {
		// Likely a key pasted into the wrong field: refused, and not
		// repeated in the answer (names are echoed and logged freely).
		return fmt.Errorf("%s name looks like an API key and is refused (it is not repeated here); use %s", kind, nameRule)
	}
	if !nameRe.MatchString(name) {
		return fmt.Errorf("%s name %q is invalid: use %s", kind, name, nameRule)
	}
	return nil
}

// parseCIDRs validates a list of CIDR blocks (a bare IP means a /32 or /128).
func parseCIDRs(field string, raw []string) ([]string, error) {
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

// ipAllowed reports whether addr lies in one of cidrs; an empty list allows
// every address. An unparsable address is never allowed by a non-empty list.
func ipAllowed(cidrs []string, addr string) bool {
	if len(cidrs) == 0 {
		return true
	}
	ip, ok := parseIP(addr)
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

// parseIP reads an address as callers send it: a bare IP, or host:port.
// IPv4-mapped IPv6 addresses are unmapped so they match IPv4 CIDRs.
func parseIP(addr string) (netip.Addr, bool) {
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
