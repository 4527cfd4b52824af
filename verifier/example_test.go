package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/verifier"
)

// A resource server in front of the orders API accepts either credential:
// an exchanged token (Authorization: Bearer), checked offline, or an API
// key (X-Api-Key), checked with Vault. The README shows this code.
func Example() {
	vaultToken := "hvs.EXAMPLE" // a Vault token with read on apikeys/verify
	tokens, err := verifier.NewTokenVerifier(verifier.TokenConfig{
		JWKSURL:  "https://vault.example.com:8200/v1/apikeys/jwks", // no Vault token needed
		Issuer:   "vault-plugin-secrets-apikeys/apikeys",           // or the mount's token_issuer
		Audience: "orders-api",
	})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := verifier.NewKeyVerifier(verifier.KeyConfig{
		Addr: "https://vault.example.com:8200", Mount: "apikeys", Token: vaultToken,
		Audience: "orders-api",
		CacheTTL: 10 * time.Second, // optional: a key revoked in Vault is accepted here up to 10s longer
	})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		var client string
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			claims, err := tokens.Verify(r.Context(), bearer, "orders:read") // EdDSA, iss, aud, exp, nbf, scope
			if err != nil {
				http.Error(w, err.Error(), verifier.HTTPStatus(err)) // 401, 403 or 503
				return
			}
			client = claims.Subject
		} else {
			info, err := keys.Verify(r.Context(), r.Header.Get("X-Api-Key"), verifier.KeyRequest{Scopes: []string{"orders:read"}})
			if err != nil {
				http.Error(w, err.Error(), verifier.HTTPStatus(err)) // 401, 403, 429 or 503
				return
			}
			client = info.Client
		}
		fmt.Fprintf(w, "orders of %s\n", client)
	})
}

// Errors say whose fault a refusal is: the credential's (invalid, expired,
// revoked, forbidden, rate limited) or no answer at all.
func ExampleHTTPStatus() {
	tokens, err := verifier.NewTokenVerifier(verifier.TokenConfig{
		JWKSURL:  "http://127.0.0.1:1/v1/apikeys/jwks", // nothing listens here
		Issuer:   "vault-plugin-secrets-apikeys/apikeys",
		Audience: "orders-api",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var verr *verifier.Error
	_, err = tokens.Verify(ctx, "not-a-token")
	errors.As(err, &verr)
	fmt.Println(verifier.HTTPStatus(err), errors.Is(err, verifier.ErrInvalid), verr.Code)
	_, err = tokens.Verify(ctx, "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.e30.c2ln") // EdDSA, but no JWKS to check it with
	errors.As(err, &verr)
	fmt.Println(verifier.HTTPStatus(err), errors.Is(err, verifier.ErrUnavailable), verr.Code)
	// Output:
	// 401 true malformed
	// 503 true jwks_unavailable
}

// A gateway that verifies API keys online answers rate-limited callers
// with Retry-After from the error.
func ExampleKeyVerifier() {
	keys, err := verifier.NewKeyVerifier(verifier.KeyConfig{
		Addr:  "https://vault.example.com:8200",
		Mount: "apikeys",
		Token: "hvs.EXAMPLE", // read on apikeys/verify (GET form; the mount passes X-Api-Key through)
	})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		info, err := keys.Verify(r.Context(), r.Header.Get("X-Api-Key"), verifier.KeyRequest{
			Audience: "orders-api",
			ClientIP: r.RemoteAddr,
		})
		var verr *verifier.Error
		if errors.As(err, &verr) && errors.Is(err, verifier.ErrRateLimited) {
			w.Header().Set("Retry-After", fmt.Sprint(int(verr.RetryAfter.Seconds())))
		}
		if err != nil {
			http.Error(w, http.StatusText(verifier.HTTPStatus(err)), verifier.HTTPStatus(err))
			return
		}
		r.Header.Set("X-Client", info.Client)
		// ... pass the request upstream
	})
}

// A resource server fetches the JWKS before it takes traffic, so the first
// request does not wait for it.
func ExampleTokenVerifier_Refresh() {
	tokens, err := verifier.NewTokenVerifier(verifier.TokenConfig{
		JWKSURL:         "https://vault.example.com:8200/v1/apikeys/jwks",
		Issuer:          "vault-plugin-secrets-apikeys/apikeys",
		Audience:        "orders-api",
		RefreshInterval: time.Minute, // a withdrawn signing key is refused here within a minute
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := tokens.Refresh(context.Background()); err != nil {
		log.Fatal(err)
	}
	log.Printf("signing keys: %v", tokens.KeyIDs())
}
