// Package ciexample is the CI example (SPEC §1, §5): a CI job gets a
// short-lived API key without any long-lived secret. A locally generated
// RSA key pair plays the CI provider's OIDC issuer (as GitHub Actions or
// GitLab sign job tokens); Vault's JWT auth method trusts its public key and
// binds the job's claims; the job logs in with its signed token and reads a
// leased key from creds/, which dies with the job's Vault token.
//
// Run it against a dev server (make dev) with: go run ./scripts/ci-example/run
package ciexample

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/bootstrap/ci"
)

// Audience is the audience CI job tokens are minted for (bound by the role).
const Audience = "https://vault.example.internal"

// Issuer is the stand-in for a CI provider's token issuer.
type Issuer struct {
	URL string
	key *rsa.PrivateKey
	kid string
}

// NewIssuer generates the issuer's signing key pair.
func NewIssuer(url string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &Issuer{URL: url, key: key, kid: "ci-example-1"}, nil
}

// PublicPEM is the public key Vault's JWT auth method validates tokens with.
func (i *Issuer) PublicPEM() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&i.key.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// Job describes the CI job a token is minted for.
type Job struct {
	Repository string
	Ref        string
	RunID      string
}

type jobClaims struct {
	jwt.Claims
	Repository string `json:"repository"`
	Ref        string `json:"ref"`
	RunID      string `json:"run_id"`
}

// JobToken signs the job's identity token (RS256), valid for 5 minutes.
func (i *Issuer) JobToken(job Job, now time.Time) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", err
	}
	c := jobClaims{
		Claims: jwt.Claims{
			Issuer:    i.URL,
			Subject:   "repo:" + job.Repository + ":ref:" + job.Ref,
			Audience:  jwt.Audience{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID:        "job-" + job.RunID,
		},
		Repository: job.Repository,
		Ref:        job.Ref,
		RunID:      job.RunID,
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// Setup is what an operator does once: trust the issuer in a JWT auth
// method at authPath, create the job role and policy, and the apikeys
// client and role on mount.
func Setup(ctx context.Context, c *api.Client, authPath, mount string, iss *Issuer) error {
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return err
	}
	if _, ok := auths[authPath+"/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, authPath, &api.EnableAuthOptions{Type: "jwt"}); err != nil {
			return fmt.Errorf("enabling the JWT auth method: %w", err)
		}
	}
	pub, err := iss.PublicPEM()
	if err != nil {
		return err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+authPath+"/config", map[string]interface{}{
		"jwt_validation_pubkeys": []string{pub},
		"bound_issuer":           iss.URL,
	}); err != nil {
		return fmt.Errorf("configuring the JWT auth method: %w", err)
	}
	var role map[string]interface{}
	if err := json.Unmarshal(ci.JWTRole, &role); err != nil {
		return err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+authPath+"/role/"+ci.JWTRoleName, role); err != nil {
		return fmt.Errorf("writing the JWT role: %w", err)
	}
	// The policy file names the default mount, apikeys/.
	policy := strings.ReplaceAll(ci.Policy, `"apikeys/`, `"`+mount+`/`)
	if err := c.Sys().PutPolicyWithContext(ctx, ci.PolicyName, policy); err != nil {
		return fmt.Errorf("writing the policy: %w", err)
	}
	for _, def := range []struct {
		path string
		body []byte
	}{{mount + "/clients/" + ci.Client, ci.APIKeysClient}, {mount + "/roles/" + ci.Role, ci.APIKeysRole}} {
		var data map[string]interface{}
		if err := json.Unmarshal(def.body, &data); err != nil {
			return err
		}
		if _, err := c.Logical().WriteWithContext(ctx, def.path, data); err != nil {
			return fmt.Errorf("writing %s: %w", def.path, err)
		}
	}
	return nil
}

// Creds is what the job gets: a leased key and the Vault token it lives by.
type Creds struct {
	VaultToken    string
	Key           string
	KeyID         string
	Scopes        []string
	LeaseID       string
	LeaseDuration time.Duration
}

// RunPipeline is the job's side: with nothing but its signed job token it
// logs in to Vault at addr and reads a leased key.
func RunPipeline(ctx context.Context, addr, authPath, mount, jobToken string) (*Creds, error) {
	conf := api.DefaultConfig()
	conf.Address = addr
	c, err := api.NewClient(conf)
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	login, err := c.Logical().WriteWithContext(ctx, "auth/"+authPath+"/login", map[string]interface{}{
		"role": ci.JWTRoleName,
		"jwt":  jobToken,
	})
	if err != nil {
		return nil, fmt.Errorf("logging in with the job token: %w", err)
	}
	if login == nil || login.Auth == nil {
		return nil, fmt.Errorf("login returned no token")
	}
	c.SetToken(login.Auth.ClientToken)
	s, err := c.Logical().ReadWithContext(ctx, mount+"/creds/"+ci.Client+"/"+ci.Role)
	if err != nil {
		return nil, fmt.Errorf("reading leased key: %w", err)
	}
	if s == nil {
		return nil, fmt.Errorf("creds returned nothing")
	}
	out := &Creds{
		VaultToken:    login.Auth.ClientToken,
		LeaseID:       s.LeaseID,
		LeaseDuration: time.Duration(s.LeaseDuration) * time.Second,
	}
	out.Key, _ = s.Data["key"].(string)
	out.KeyID, _ = s.Data["key_id"].(string)
	if list, ok := s.Data["scopes"].([]interface{}); ok {
		for _, v := range list {
			out.Scopes = append(out.Scopes, fmt.Sprint(v))
		}
	}
	return out, nil
}
