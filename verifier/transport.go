package verifier

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns the HTTP transport the verifiers use by default,
// tuned for many small requests to one Vault: connections are kept and
// reused (Go's default keeps only 2 idle per host, so a busy gateway would
// open and close connections all the time, each a TCP and TLS handshake),
// HTTP/2 is used when Vault offers it over TLS, and every phase has a
// timeout. Pass it in an http.Client of your own to add TLS settings
// (TLSClientConfig with Vault's CA).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
