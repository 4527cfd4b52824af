// Command bench-token compares offline verification of an exchanged token
// by the verifier library (verifier.TokenVerifier: what a Go resource
// server runs per request, every check included: the EdDSA signature, iss,
// aud, exp, nbf and the scope it needs) with online verification of the key
// through Vault's verify endpoint (verifier.KeyVerifier, GET form, reused
// connections), against a real Vault with the plugin (make bench-token).
//
// Its main figure, offline_library_ed25519_ratio, is the library's
// throughput as a ratio to a bare crypto/ed25519 Verify of the same token's
// signing input (no parsing, no claims): the most any per-request verifier
// can reach on the machine, so the ratio says what the library adds around
// the signature (goal >= 0.8). The library runs as configured by default,
// verifying one token again and again as a client's requests bring it: it
// keeps the token parsed, and checks the signature and every claim on each
// call. offline_library_first_sight_ed25519_ratio is the same with nothing
// kept (ParsedTokens=-1): every token parsed and decoded as if new. The
// three run side by side: in each round they take turns in short slices,
// and the figures are medians of the per-round ratios, so machine noise
// hits all alike.
//
// It also prints offline_online_ratio (library offline / online verify),
// offline_signature_ceiling_ratio (bare signature / online) and
// offline_cached_online_ratio for a verifier that, like Envoy's jwt_authn
// jwt_cache_config, remembers tokens whose signature it already checked
// and re-checks only exp (a verified JWT stays valid until exp).
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/benchkit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/verifier"
)

func main() {
	dur := flag.Duration("duration", 3*time.Second, "how long each side runs (online, cached); the offline pair gets this per round")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "concurrent workers on each side")
	rounds := flag.Int("rounds", 5, "rounds of the side-by-side offline comparison")
	slice := flag.Duration("slice", 200*time.Millisecond, "the offline pair take turns in slices this long")
	audit := flag.Bool("audit", true, "enable Vault's file audit device, as production mounts do")
	flag.Parse()
	if err := run(*dur, *workers, *rounds, *slice, *audit); err != nil {
		fmt.Fprintln(os.Stderr, "bench-token:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, workers, rounds int, slice time.Duration, audit bool) error {
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

	newTokens := func(parsed int) (*verifier.TokenVerifier, error) {
		v, err := verifier.NewTokenVerifier(verifier.TokenConfig{
			JWKSURL:      srv.Addr + "/v1/" + m + "/jwks",
			Issuer:       "vault-plugin-secrets-apikeys/" + m,
			Audience:     "orders-api",
			ParsedTokens: parsed,
		})
		if err != nil {
			return nil, err
		}
		return v, v.Refresh(ctx)
	}
	// The library as configured by default keeps verified tokens parsed,
	// which is the case of a client sending its token with every request;
	// firstSight keeps none, the case of a token never seen before.
	tokens, err := newTokens(0)
	if err != nil {
		return err
	}
	firstSight, err := newTokens(-1)
	if err != nil {
		return err
	}
	offlineOne := func() error {
		_, err := tokens.Verify(ctx, token, "orders:read")
		return err
	}
	firstSightOne := func() error {
		_, err := firstSight.Verify(ctx, token, "orders:read")
		return err
	}
	cachedOne := cachedVerifier(ctx, tokens, token)
	sigOne, err := signatureOnly(token, srv.Addr+"/v1/"+m+"/jwks")
	if err != nil {
		return err
	}
	keys, err := verifier.NewKeyVerifier(verifier.KeyConfig{Addr: srv.Addr, Mount: m, Token: srv.Token, Audience: "orders-api"})
	if err != nil {
		return err
	}
	onlineOne := func() error {
		_, err := keys.Verify(ctx, key, verifier.KeyRequest{Scopes: []string{"orders:read"}})
		return err
	}

	// Warm up every path (connections, caches) before measuring.
	for i := 0; i < 200; i++ {
		for _, fn := range []func() error{offlineOne, firstSightOne, cachedOne, sigOne, onlineOne} {
			if err := fn(); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	ops, ratios, err := sideBySide(rounds, dur, slice, workers, offlineOne, firstSightOne, sigOne)
	if err != nil {
		return err
	}
	offline, first, sigs := ops[0], ops[1], ops[2]
	cached, err := measure(dur, workers, cachedOne)
	if err != nil {
		return fmt.Errorf("offline cached: %w", err)
	}
	online, err := measure(dur, workers, onlineOne)
	if err != nil {
		return fmt.Errorf("online: %w", err)
	}
	fmt.Printf("workers=%d rounds=%d duration=%s audit=%v cpus=%d\n", workers, rounds, dur, audit, runtime.NumCPU())
	fmt.Printf("offline_library_verify_ops_per_sec=%.0f (%.1fus/op per worker)\n", offline, float64(workers)*1e6/offline)
	fmt.Printf("offline_library_first_sight_ops_per_sec=%.0f (%.1fus/op per worker; ParsedTokens=-1)\n", first, float64(workers)*1e6/first)
	fmt.Printf("ed25519_verify_only_ops_per_sec=%.0f (%.1fus/op per worker)\n", sigs, float64(workers)*1e6/sigs)
	fmt.Printf("offline_library_ed25519_ratio=%.2f (median of %d rounds; goal >= 0.8)\n", ratios[0], rounds)
	fmt.Printf("offline_library_first_sight_ed25519_ratio=%.2f (every token new: parsed and decoded each time)\n", ratios[1])
	fmt.Printf("online_vault_verify_ops_per_sec=%.0f (%.1fus/op per worker; verifier.KeyVerifier, GET form)\n", online, float64(workers)*1e6/online)
	fmt.Printf("offline_cached_jwt_verify_ops_per_sec=%.0f\n", cached)
	fmt.Printf("offline_online_ratio=%.1f\n", offline/online)
	fmt.Printf("offline_signature_ceiling_ratio=%.1f\n", sigs/online)
	fmt.Printf("offline_cached_online_ratio=%.1f\n", cached/online)
	return nil
}

// sideBySide runs each of fns for dur per round, taking turns in slices
// (the order rotating from round to round), and returns, per fn, the
// median over rounds of its ops/s and of its per-round ratio to the last
// fn.
func sideBySide(rounds int, dur, slice time.Duration, workers int, fns ...func() error) (ops, ratios []float64, err error) {
	perOps := make([][]float64, len(fns))
	perRatio := make([][]float64, len(fns))
	for r := 0; r < rounds; r++ {
		n := make([]int64, len(fns))
		took := make([]time.Duration, len(fns))
		for spent := time.Duration(0); spent < dur; spent += slice {
			for k := range fns {
				i := (k + r) % len(fns)
				c, d, err := count(slice, workers, fns[i])
				if err != nil {
					return nil, nil, err
				}
				n[i], took[i] = n[i]+c, took[i]+d
			}
		}
		last := float64(n[len(fns)-1]) / took[len(fns)-1].Seconds()
		for i := range fns {
			rate := float64(n[i]) / took[i].Seconds()
			perOps[i] = append(perOps[i], rate)
			perRatio[i] = append(perRatio[i], rate/last)
		}
	}
	for i := range fns {
		ops = append(ops, benchkit.Median(perOps[i]))
		ratios = append(ratios, benchkit.Median(perRatio[i]))
	}
	return ops, ratios, nil
}

// cachedVerifier verifies token fully once, then only checks that it has
// not expired: the answer a cache keyed by the token gives.
func cachedVerifier(ctx context.Context, tokens *verifier.TokenVerifier, token string) func() error {
	var mu sync.RWMutex
	cache := map[string]time.Time{} // token -> exp, after a full verification
	return func() error {
		mu.RLock()
		exp, ok := cache[token]
		mu.RUnlock()
		if !ok {
			cl, err := tokens.Verify(ctx, token, "orders:read")
			if err != nil {
				return err
			}
			exp = cl.Expiry
			mu.Lock()
			cache[token] = exp
			mu.Unlock()
		}
		if !time.Now().Before(exp) {
			return fmt.Errorf("cached token expired")
		}
		return nil
	}
}

// signatureOnly returns a check of token's Ed25519 signature alone against
// the JWKS key named by its kid: the floor under any per-request verifier.
func signatureOnly(token, jwksURL string) (func() error, error) {
	pub, err := publicKeyOf(token, jwksURL)
	if err != nil {
		return nil, err
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

// count runs fn from workers goroutines for d and returns the operations
// done and the time they took.
func count(d time.Duration, workers int, fn func() error) (int64, time.Duration, error) {
	var ops atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
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
		return 0, 0, err
	}
	return ops.Load(), time.Since(start), nil
}

// measure runs fn from workers goroutines for dur and returns ops/s.
func measure(dur time.Duration, workers int, fn func() error) (float64, error) {
	n, took, err := count(dur, workers, fn)
	if err != nil {
		return 0, err
	}
	return float64(n) / took.Seconds(), nil
}

// publicKeyOf fetches the JWKS and returns the Ed25519 key token's kid
// names.
func publicKeyOf(token, jwksURL string) (ed25519.PublicKey, error) {
	resp, err := http.Get(jwksURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("parsing the token: %w", err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("jwks has no single key %q", tok.Headers[0].KeyID)
	}
	pub, ok := keys[0].Key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("jwks key %q is %T, not Ed25519", tok.Headers[0].KeyID, keys[0].Key)
	}
	return pub, nil
}
