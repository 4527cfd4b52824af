package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Defaults of SenderOptions.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	maxErrBody              = 200 // bytes of a failed response kept in Result.Err
	maxErrLen               = 300 // bound of Result.Err as a whole
)

// SenderOptions configure a Sender.
type SenderOptions struct {
	Policy           Policy
	Timeout          time.Duration // whole request incl. reading the capped response; default 10s
	MaxResponseBytes int64         // read at most this much of the response body, then stop (default 64 KiB)
	UserAgent        string
}

// Sender posts webhook deliveries. It keeps one connection pool, so
// deliveries to the same receiver reuse connections; it is safe for
// concurrent use.
type Sender struct {
	client    *http.Client
	policy    Policy
	timeout   time.Duration
	maxBody   int64
	userAgent string
}

// NewSender returns a Sender. Its dialer checks every address it connects
// to with o.Policy.CheckIP, after DNS resolution: a name that resolves (or
// later re-resolves) to a refused address is refused, whatever CheckURL
// saw. Proxies from the environment are ignored, since through a proxy the
// check would apply to the proxy and not to the destination.
func NewSender(o SenderOptions) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	policy := o.Policy
	dialer := &net.Dialer{
		Timeout:   o.Timeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return refused("unparsable dial address")
			}
			return policy.CheckIP(ap.Addr())
		},
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: o.Timeout,
	}
	return &Sender{
		client: &http.Client{
			Transport: transport,
			// A redirect could lead anywhere, and the receiver's URL was
			// what the operator approved: report it instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		policy:    policy,
		timeout:   o.Timeout,
		maxBody:   o.MaxResponseBytes,
		userAgent: o.UserAgent,
	}
}

// Result is the outcome of one delivery attempt, as the outbox records it.
type Result struct {
	Status  int           // HTTP status, 0 if no response
	Latency time.Duration // from the start of Send to its end
	// Err is "" on 2xx, else a short reason safe to store and show: it
	// never holds the URL, the request body, or more than 200 bytes of
	// the response body, and only printable ASCII.
	Err string
	// Refused is set when Policy refused the destination (by its URL or
	// the address it resolved to); retrying soon will not help.
	Refused bool
}

// OK reports whether the receiver accepted the delivery (2xx).
func (r Result) OK() bool { return r.Status >= 200 && r.Status <= 299 && r.Err == "" }

// Send POSTs body with headers to rawURL. It follows no redirect (a 3xx is
// the failure "redirect not followed"), and gives up after the Sender's
// Timeout, which covers connecting, the response, and reading at most
// MaxResponseBytes of its body. A 2xx status is success even if reading
// the rest of the body then fails: the receiver has acknowledged.
func (s *Sender) Send(ctx context.Context, rawURL string, headers map[string]string, body []byte) Result {
	start := time.Now()
	res := s.send(ctx, rawURL, headers, body)
	res.Latency = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, rawURL string, headers map[string]string, body []byte) Result {
	if err := s.policy.CheckURL(rawURL); err != nil {
		return Result{Err: sanitize(err.Error(), maxErrLen), Refused: true}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return Result{Err: "url: is not a valid URL", Refused: true}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if s.userAgent != "" {
		req.Header.Set("User-Agent", s.userAgent)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return transportFailure(ctx, err, s.timeout)
	}
	defer resp.Body.Close()
	// Closing a body that was not read to the end drops the connection,
	// so a receiver streaming without end costs at most maxBody bytes.
	head := make([]byte, min(maxErrBody, s.maxBody))
	n, _ := io.ReadFull(resp.Body, head)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.maxBody-int64(n)))
	res := Result{Status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		res.Err = "HTTP " + strconv.Itoa(resp.StatusCode) + ": redirect not followed"
	default:
		res.Err = "HTTP " + strconv.Itoa(resp.StatusCode)
		if snippet := sanitize(string(head[:n]), maxErrBody); snippet != "" {
			res.Err += ": " + snippet
		}
	}
	return res
}

// transportFailure describes a request that got no response. Errors of
// net/http name the URL (url.Error), so only what lies beneath is used.
func transportFailure(ctx context.Context, err error, timeout time.Duration) Result {
	var ref *RefusedError
	if errors.As(err, &ref) {
		return Result{Err: sanitize("destination refused: "+ref.Reason, maxErrLen), Refused: true}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Result{Err: "timed out after " + timeout.String()}
	}
	if errors.Is(err, context.Canceled) {
		return Result{Err: "canceled"}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		reason := "DNS lookup failed"
		if dnsErr.IsNotFound {
			reason += ": no such host"
		} else if dnsErr.IsTimeout {
			reason += ": timeout"
		}
		return Result{Err: reason}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return Result{Err: sanitize(err.Error(), maxErrLen)}
}

// sanitize keeps printable ASCII (other bytes become '?'), collapses
// whitespace runs to one space and cuts the result to limit bytes.
func sanitize(s string, limit int) string {
	out := make([]byte, 0, min(len(s), limit))
	space := false
	for i := 0; i < len(s) && len(out) < limit; i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if !space && len(out) > 0 {
				out = append(out, ' ')
			}
			space = true
			continue
		case c < 0x20 || c > 0x7e:
			c = '?'
		}
		space = false
		out = append(out, c)
	}
	return string(bytes.TrimRight(out, " "))
}
