// Package notify holds the mechanics of outbound webhooks: signing,
// event-type and severity filters, the destination policy, the HTTP
// sender and the retry schedule. It decides nothing about which events
// become notifications or when they are retried; the outbox does that.
//
// # Signing: Standard Webhooks
//
// Deliveries follow Standard Webhooks (https://www.standardwebhooks.com/):
// headers webhook-id, webhook-timestamp and webhook-signature, where the
// signature is "v1," + base64(HMAC-SHA256(secret, id + "." + timestamp +
// "." + body)) and secrets are written "whsec_" + base64. Following a
// published convention rather than inventing one means receivers verify
// with an existing library in their language, and the tests check our
// signatures against the reference implementation instead of against
// themselves. The id is stable across retries so receivers can drop
// duplicates; the timestamp is signed so a captured delivery cannot be
// replayed outside the receiver's tolerance window. Several secrets may
// sign one delivery (space-separated signatures), which lets a secret be
// rotated without a window in which receivers reject deliveries.
//
// # Destination policy (SSRF)
//
// A webhook URL is chosen by whoever may configure the mount, but the
// request is made from inside the Vault cluster, next to services that
// are not meant to be reachable from outside: cloud metadata endpoints
// that hand out credentials, the cluster's own listeners, private
// networks. Policy therefore refuses, whatever it is told:
//
//   - unspecified addresses, 0.0.0.0/8, broadcast and 240.0.0.0/4: not
//     destinations, and some stacks send them to the local host;
//   - link-local addresses (169.254.0.0/16, fe80::/10), which hold the
//     metadata service of most clouds at 169.254.169.254, and the other
//     known metadata addresses (AWS fd00:ec2::254, Alibaba
//     100.100.100.200, Azure's host endpoint 168.63.129.16);
//   - multicast;
//   - loopback unless AllowLoopback (tests), private ranges (RFC 1918,
//     CGNAT 100.64.0.0/10, IPv6 ULA and site-local) unless AllowPrivate
//     (receivers on an internal network).
//
// An IPv6 address that carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d,
// IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d) is judged by the IPv4
// address, since that is where the packets end up. Plain http is refused
// unless AllowHTTP, so a signed body is not readable on the wire.
//
// CheckURL judges a URL when it is configured, so a mistake is reported at
// once. It cannot judge a host name: the name may resolve to a private
// address, or resolve to a public one when checked and to 169.254.169.254
// a second later (DNS rebinding). The real check is therefore made in the
// Sender's dialer (net.Dialer.Control) on the address actually being
// connected to, for every connection. For the same reason the Sender
// ignores HTTP(S)_PROXY (through a proxy the dialer would only see the
// proxy) and follows no redirect (a 3xx could point anywhere, and a
// receiver that moved should be reconfigured, not silently followed).
//
// # Errors
//
// URLs may carry tokens in their query, and response bodies are written by
// the receiver. Errors and Result.Err therefore never repeat a URL or the
// request body, keep at most 200 bytes of a response, and hold only
// printable ASCII, so they can be stored in the outbox and shown to
// operators.
package notify
