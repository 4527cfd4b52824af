package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults and bounds of KeyConfig.
const (
	DefaultRequestTimeout = 5 * time.Second
	// MaxCacheTTL bounds KeyConfig.CacheTTL: the cache is for bursts of
	// requests with one key, not a way to stop asking Vault.
	MaxCacheTTL      = 5 * time.Minute
	DefaultCacheSize = 10000
	// MaxKeyBytes is the longest key sent to Vault; the plugin refuses
	// longer ones anyway.
	MaxKeyBytes = 512
	// maxAnswerBytes bounds a verify answer read from Vault (a few hundred
	// bytes, more with metadata).
	maxAnswerBytes = 1 << 20
)

// KeyConfig configures a KeyVerifier. Addr, Mount and Token are required.
type KeyConfig struct {
	// Addr is Vault's address, e.g. https://vault.example.com:8200. The
	// verifier never follows redirects: a key is only ever sent to Addr.
	Addr string
	// Mount is where the plugin is mounted, e.g. "apikeys".
	Mount string
	// Token is the Vault token sent as X-Vault-Token: it needs "read" on
	// <mount>/verify for the GET form, "update" for POST. SetToken swaps it
	// (after a renewal or a new login).
	Token string
	// Namespace is sent as X-Vault-Namespace when set (Vault Enterprise).
	Namespace string
	// UsePOST sends the key in the body of a POST instead of the X-Api-Key
	// header of a GET. GET is cheaper (Vault skips an existence check) but
	// needs the mount tuned with passthrough_request_headers=X-Api-Key;
	// without it Vault answers 400 (ErrRequest).
	UsePOST bool
	// Audience is sent with every request that names none of its own: the
	// API this gateway or resource server fronts.
	Audience string
	// RequestTimeout bounds one verify request when ctx has no earlier
	// deadline. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// CacheTTL turns on the answer cache: an active answer is reused for
	// the same key and request for up to CacheTTL after Vault gave it, and
	// never past the key's exp. Only active answers without a rate limit
	// are cached (a refusal is asked again every time, and rate limits
	// count every request). The cost: a key revoked, locked, expired early
	// or narrowed in Vault is still accepted by this process for up to
	// CacheTTL, and Vault's usage counts see only the requests that missed
	// the cache. 0 (the default) caches nothing; at most MaxCacheTTL.
	CacheTTL time.Duration
	// CacheSize bounds the cache's entries (least recently used go first).
	// 0 means DefaultCacheSize.
	CacheSize int
	// HTTPClient sends the requests; nil means a client with NewTransport.
	// Its CheckRedirect is replaced so no redirect is followed.
	HTTPClient *http.Client
	// Now tells the time (tests inject a fake clock); nil means time.Now.
	Now func() time.Time
}

// KeyRequest is what the caller of a key wants to do: each field is checked
// by the plugin as its verify endpoint documents.
type KeyRequest struct {
	// Scopes the caller needs; each must be among the key's effective
	// scopes.
	Scopes []string
	// Audience overrides KeyConfig.Audience for this request.
	Audience string
	// Environment the key is presented in; must be the key's.
	Environment string
	// ClientIP is the caller's address, checked against bound_cidrs.
	ClientIP string
	// AllowPending also accepts a staged (pending) version.
	AllowPending bool
}

// KeyInfo is the answer for an active key. Callers must not modify it: a
// cached answer is shared.
type KeyInfo struct {
	KeyID       string
	Client      string
	Role        string
	Scopes      []string // effective scopes
	Audiences   []string
	Environment string
	Expiry      time.Time // zero when the key does not expire
	IssuedAt    time.Time // when the presented version was created
	Version     int
	State       string // active, previous (in its grace), or pending
	// Owner, Purpose and the metadata are set when the role's
	// verify_response_fields lists them.
	Owner          string
	Purpose        string
	KeyMetadata    map[string]string
	ClientMetadata map[string]string
	// RateLimit is the tightest rate limit that applies, if any.
	RateLimit *RateLimit
}

// RateLimit is the state of a key's tightest rate limit after a verify.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Duration // until the window ends
}

// KeyVerifier asks the plugin's verify endpoint about API keys. It is safe
// for concurrent use; make one per Vault and mount and share it, so its
// connections are reused.
type KeyVerifier struct {
	cfg      KeyConfig
	endpoint string
	token    atomic.Pointer[string]
	cache    *answerCache
	requests atomic.Int64
}

// NewKeyVerifier checks cfg and returns a verifier.
func NewKeyVerifier(cfg KeyConfig) (*KeyVerifier, error) {
	base, err := url.Parse(cfg.Addr)
	switch {
	case cfg.Addr == "" || err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return nil, fmt.Errorf("verifier: KeyConfig.Addr %q must be Vault's http(s)://host:port address", cfg.Addr)
	case strings.Trim(cfg.Mount, "/") == "":
		return nil, errors.New("verifier: KeyConfig.Mount is required (where the plugin is mounted, e.g. apikeys)")
	case cfg.Token == "":
		return nil, errors.New("verifier: KeyConfig.Token is required (a Vault token allowed to verify)")
	case cfg.CacheTTL < 0 || cfg.CacheTTL > MaxCacheTTL:
		return nil, fmt.Errorf("verifier: KeyConfig.CacheTTL %s must be between 0 and %s", cfg.CacheTTL, MaxCacheTTL)
	case cfg.CacheSize < 0:
		return nil, fmt.Errorf("verifier: KeyConfig.CacheSize %d is negative", cfg.CacheSize)
	case cfg.RequestTimeout < 0:
		return nil, fmt.Errorf("verifier: KeyConfig.RequestTimeout %s is negative", cfg.RequestTimeout)
	}
	cfg.RequestTimeout = defaulted(cfg.RequestTimeout, DefaultRequestTimeout)
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := &http.Client{Transport: NewTransport()}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	// A redirect would carry X-Api-Key (Go strips only Authorization and
	// cookies) to wherever Vault or a proxy points: refuse it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = hc
	v := &KeyVerifier{
		cfg:      cfg,
		endpoint: strings.TrimRight(base.String(), "/") + "/v1/" + strings.Trim(cfg.Mount, "/") + "/verify",
	}
	v.SetToken(cfg.Token)
	if cfg.CacheTTL > 0 {
		if v.cache, err = newAnswerCache(cfg.CacheSize, cfg.CacheTTL); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// SetToken replaces the Vault token used from the next request on.
func (v *KeyVerifier) SetToken(token string) { v.token.Store(&token) }

// Requests is how many verify requests were sent to Vault (cache misses),
// for metrics.
func (v *KeyVerifier) Requests() int64 { return v.requests.Load() }

// Verify asks Vault whether key is active for req, or answers from the
// cache (KeyConfig.CacheTTL). It returns the key's details, or an *Error:
// ErrInvalid, ErrExpired, ErrRevoked, ErrForbidden or ErrRateLimited with
// the plugin's code when Vault refused the key; ErrUnavailable or
// ErrRequest when it gave no answer.
func (v *KeyVerifier) Verify(ctx context.Context, key string, req KeyRequest) (*KeyInfo, error) {
	if err := checkKeyText(key); err != nil {
		return nil, err
	}
	if req.Audience == "" {
		req.Audience = v.cfg.Audience
	}
	var ck cacheKey
	if v.cache != nil {
		ck = v.cache.keyFor(key, req)
		if info, ok := v.cache.get(ck, v.cfg.Now()); ok {
			return info, nil
		}
	}
	asked := v.cfg.Now()
	ans, err := v.ask(ctx, key, req)
	if err != nil {
		return nil, err
	}
	if !ans.Active {
		return nil, ans.refusal()
	}
	info := ans.info()
	if v.cache != nil && info.RateLimit == nil {
		v.cache.put(ck, info, asked)
	}
	return info, nil
}

// checkKeyText refuses, without asking Vault, what cannot be a key and
// could not travel in a header: empty, too long, or not visible ASCII.
// The message never repeats the key.
func checkKeyText(key string) error {
	if key == "" {
		return newError(ErrInvalid, CodeMissing, "no key", nil)
	}
	if len(key) > MaxKeyBytes {
		return newError(ErrInvalid, CodeMalformed, fmt.Sprintf("key longer than %d bytes", MaxKeyBytes), nil)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return newError(ErrInvalid, CodeMalformed, "key holds a character that is not visible ASCII", nil)
		}
	}
	return nil
}

// ask sends one verify request and decodes the answer.
func (v *KeyVerifier) ask(ctx context.Context, key string, req KeyRequest) (*verifyAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
	defer cancel()
	hreq, err := v.newRequest(ctx, key, req)
	if err != nil {
		return nil, newError(ErrRequest, "", "building the verify request", err)
	}
	v.requests.Add(1)
	resp, err := v.cfg.HTTPClient.Do(hreq)
	if err != nil {
		return nil, newError(ErrUnavailable, "", "verify request to Vault", redactURLError(err))
	}
	// Read the body to its end so the connection goes back to the pool.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	resp.Body.Close()
	if err != nil {
		return nil, newError(ErrUnavailable, "", "reading Vault's answer", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, body)
	}
	var ans verifyAnswer
	if v.cfg.UsePOST {
		var env struct {
			Data *verifyAnswer `json:"data"`
		}
		env.Data = &ans
		err = json.Unmarshal(body, &env)
	} else {
		err = json.Unmarshal(body, &ans)
	}
	if err != nil {
		return nil, newError(ErrUnavailable, "", "Vault's answer is not a verify answer", err)
	}
	return &ans, nil
}

func (v *KeyVerifier) newRequest(ctx context.Context, key string, req KeyRequest) (*http.Request, error) {
	var hreq *http.Request
	var err error
	if v.cfg.UsePOST {
		body := map[string]interface{}{"key": key}
		addFields(req, func(name string, value interface{}) { body[name] = value })
		buf, merr := json.Marshal(body)
		if merr != nil {
			return nil, merr
		}
		hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, bytes.NewReader(buf))
		if err == nil {
			hreq.Header.Set("Content-Type", "application/json")
		}
	} else {
		q := url.Values{}
		addFields(req, func(name string, value interface{}) { q.Set(name, fmt.Sprint(value)) })
		u := v.endpoint
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		hreq, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil {
			hreq.Header.Set("X-Api-Key", key)
		}
	}
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("X-Vault-Token", *v.token.Load())
	if v.cfg.Namespace != "" {
		hreq.Header.Set("X-Vault-Namespace", v.cfg.Namespace)
	}
	return hreq, nil
}

// addFields passes the request's set fields to add, by their verify names.
func addFields(req KeyRequest, add func(name string, value interface{})) {
	if len(req.Scopes) > 0 {
		add("scope", strings.Join(req.Scopes, " "))
	}
	if req.Audience != "" {
		add("audience", req.Audience)
	}
	if req.Environment != "" {
		add("environment", req.Environment)
	}
	if req.ClientIP != "" {
		add("client_ip", req.ClientIP)
	}
	if req.AllowPending {
		add("allow_pending", true)
	}
}

// redactURLError drops the URL from a transport error: a GET URL holds
// only the query fields, never the key, but a caller's scope or client
// address has no place in a log line about the network either.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// statusError turns a non-200 answer from Vault into an *Error: 4xx means
// Vault refused the question (ErrRequest), anything else that no answer
// was had (ErrUnavailable). Vault's messages are kept; they never echo the
// key.
func statusError(status int, body []byte) *Error {
	var vaultErr struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(body, &vaultErr)
	detail := fmt.Sprintf("Vault answered HTTP %d", status)
	if len(vaultErr.Errors) > 0 {
		detail += ": " + strings.Join(vaultErr.Errors, "; ")
	}
	kind := ErrUnavailable
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		kind = ErrRequest
	}
	if status >= 300 && status < 400 {
		detail += " (a redirect, not followed: point Addr at the active node or a load balancer)"
	}
	return newError(kind, "", detail, nil)
}
