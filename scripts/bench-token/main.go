// Command bench-token compares offline verification of an exchanged token
// (a resource server checking the JWT in-process against the mount's JWKS
// with go-jose) with online verification of the key through Vault's verify
// endpoint over HTTP. Both run with the same number of concurrent workers
// for the same time against a real Vault with the plugin (make bench-token).
// It prints ops/s of each and offline_online_ratio = offline / online, where
// offline verifies the signature and claims on every call. It also prints
// offline_cached_online_ratio for a verifier that, like Envoy's jwt_authn
// jwt_cache_config, remembers tokens whose signature it already checked and
// re-checks only exp and aud (a verified JWT stays valid until exp, so the
// answer is the same).
//
// To show how far the signature alone bounds offline verification on this
// machine, it also times a bare crypto/ed25519 Verify of the token's signing
// input (no parsing, no claims) and prints offline_signature_ceiling_ratio:
// no JWT library can verify a signature per request faster than that.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func main() {
	dur := flag.Duration("duration", 3*time.Second, "how long each side runs")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "concurrent workers on each side")
	audit := flag.Bool("audit", true, "enable Vault's file audit device, as production mounts do")
	flag.Parse()
	if err := run(*dur, *workers, *audit); err != nil {
		fmt.Fprintln(os.Stderr, "bench-token:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, workers int, audit bool) error {
	ctx := context.Background()
	srv, err := vaulttest.Start(ctx, vaulttest.Options{NoAudit: !audit, LogLevel: "error"})
	if err != nil {
		return err
	}
	defer srv.Stop()
	m, c := srv.Mount, srv.Client.Logical()
	steps := []struct {
		path string
		data map[string]interface{}
	}{
		{m + "/clients/bench", map[string]interface{}{"owner": "team-bench", "type": "internal"}},
		{m + "/roles/bench", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "audiences": "orders-api"}},
	}
	for _, s := range steps {
		if _, err := c.Write(s.path, s.data); err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
	}
	issued, err := c.Write(m+"/keys/bench/k1", map[string]interface{}{"role": "bench"})
	if err != nil {
		return err
	}
	key := issued.Data["key"].(string)
	ex, err := c.Write(m+"/token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:read"})
	if err != nil {
		return err
	}
	token := ex.Data["token"].(string)
	set, err := fetchJWKS(srv.Addr + "/v1/" + m + "/jwks")
	if err != nil {
		return err
	}
	iss := "vault-plugin-secrets-apikeys/" + m

	type claims struct {
		jwt.Claims
		Scope string `json:"scope"`
	}
	// verifyFull is what a resource server does per request without a
	// cache: parse, pick the key by kid, check the EdDSA signature, then
	// iss, aud, exp, nbf and the scope it needs.
	verifyFull := func() (*claims, error) {
		tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			return nil, err
		}
		var cl claims
		if err := tok.Claims(set, &cl); err != nil {
			return nil, err
		}
		if err := cl.Claims.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{"orders-api"}, Time: time.Now()}, 0); err != nil {
			return nil, err
		}
		if cl.Scope != "orders:read" {
			return nil, fmt.Errorf("scope = %q", cl.Scope)
		}
		return &cl, nil
	}
	offlineOne := func() error {
		_, err := verifyFull()
		return err
	}

	// The cached verifier: the signature is checked once per token, then
	// only the time-dependent claims.
	var cacheMu sync.RWMutex
	cache := map[string]time.Time{} // token -> exp, after a full verification
	cachedOne := func() error {
		cacheMu.RLock()
		exp, ok := cache[token]
		cacheMu.RUnlock()
		if !ok {
			cl, err := verifyFull()
			if err != nil {
				return err
			}
			exp = cl.Expiry.Time()
			cacheMu.Lock()
			cache[token] = exp
			cacheMu.Unlock()
		}
		if !time.Now().Before(exp) {
			return fmt.Errorf("cached token expired")
		}
		return nil
	}

	// The bare signature check: what every per-request verifier pays at
	// least, whatever JWT library wraps it.
	sigOne, err := signatureOnly(token, set)
	if err != nil {
		return err
	}

	body, _ := json.Marshal(map[string]string{"key": key, "scope": "orders:read", "audience": "orders-api"})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	verifyURL := srv.Addr + "/v1/" + m + "/verify"
	onlineOne := func() error {
		req, _ := http.NewRequest(http.MethodPost, verifyURL, bytes.NewReader(body))
		req.Header.Set("X-Vault-Token", srv.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Active bool `json:"active"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return err
		}
		if !out.Data.Active {
			return fmt.Errorf("verify: key not active (HTTP %d)", resp.StatusCode)
		}
		return nil
	}

	// Warm up both paths (connections, caches) before measuring.
	for i := 0; i < 200; i++ {
		if err := offlineOne(); err != nil {
			return fmt.Errorf("offline: %w", err)
		}
		if err := onlineOne(); err != nil {
			return fmt.Errorf("online: %w", err)
		}
	}
	offline, err := measure(dur, workers, offlineOne)
	if err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	cached, err := measure(dur, workers, cachedOne)
	if err != nil {
		return fmt.Errorf("offline cached: %w", err)
	}
	sigs, err := measure(dur, workers, sigOne)
	if err != nil {
		return fmt.Errorf("signature only: %w", err)
	}
	online, err := measure(dur, workers, onlineOne)
	if err != nil {
		return fmt.Errorf("online: %w", err)
	}
	fmt.Printf("workers=%d duration=%s audit=%v cpus=%d\n", workers, dur, audit, runtime.NumCPU())
	fmt.Printf("offline_jwt_verify_ops_per_sec=%.0f (%.1fus/op per worker)\n", offline, float64(workers)*1e6/offline)
	fmt.Printf("online_vault_verify_ops_per_sec=%.0f (%.1fus/op per worker)\n", online, float64(workers)*1e6/online)
	fmt.Printf("offline_cached_jwt_verify_ops_per_sec=%.0f\n", cached)
	fmt.Printf("ed25519_verify_only_ops_per_sec=%.0f (%.1fus/op per worker)\n", sigs, float64(workers)*1e6/sigs)
	fmt.Printf("offline_online_ratio=%.1f\n", offline/online)
	fmt.Printf("offline_signature_ceiling_ratio=%.1f\n", sigs/online)
	fmt.Printf("offline_cached_online_ratio=%.1f\n", cached/online)
	return nil
}

// signatureOnly returns a check of token's Ed25519 signature alone against
// the JWKS key named by its kid: the floor under any per-request verifier.
func signatureOnly(token string, set jose.JSONWebKeySet) (func() error, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, fmt.Errorf("parsing the token: %v", err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("jwks has no single key %q", tok.Headers[0].KeyID)
	}
	pub, ok := keys[0].Key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("jwks key %q is %T, not Ed25519", tok.Headers[0].KeyID, keys[0].Key)
	}
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		return nil, err
	}
	signed := []byte(token[:dot])
	return func() error {
		if !ed25519.Verify(pub, signed, sig) {
			return fmt.Errorf("signature does not verify")
		}
		return nil
	}, nil
}

// measure runs fn from workers goroutines for dur and returns ops/s.
func measure(dur time.Duration, workers int, fn func() error) (float64, error) {
	var ops atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(dur)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(ops.Load()) / time.Since(start).Seconds(), nil
}

func fetchJWKS(url string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	resp, err := http.Get(url)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return set, err
	}
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("jwks: HTTP %d: %s", resp.StatusCode, raw)
	}
	return set, json.Unmarshal(raw, &set)
}
