package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

const pathTokenHelpSyn = `Exchange an API key for a short-lived signed token (JWT).`
const pathTokenHelpDesc = `
Writing a valid "key" with an "audience" (one of the key's audiences) and
optionally "scope" (a subset of the key's effective scopes; default: all of
them) returns a JWT signed with EdDSA (Ed25519): iss (config token_issuer),
sub = the client, aud, scope (space-separated), exp, iat, nbf, jti and the
signing key's kid in its header. It expires after the config's token_ttl, and
never after the key itself stops being accepted. Resource servers verify it
offline against the public keys at jwks.

The exchange is refused (400, with the verify code) for a key verify would
not accept, or for an audience or scope the key lacks.
`

// defaultTokenIssuer names the issuer when config token_issuer is unset
// (the plugin cannot learn Vault's external URL); the mount path keeps
// issuers of different mounts apart.
const defaultTokenIssuer = "vault-plugin-secrets-apikeys"

func (b *apikeysBackend) pathToken() *framework.Path {
	return &framework.Path{
		Pattern: "token$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "token",
		},
		Fields: map[string]*framework.FieldSchema{
			"key":      {Type: framework.TypeString, Description: "The API key to exchange.", Required: true},
			"audience": {Type: framework.TypeString, Description: "API / resource server the token is for; must be one of the key's audiences.", Required: true},
			"scope":    {Type: framework.TypeString, Description: "Scopes to grant, space- or comma-separated, a subset of the key's effective scopes (default: all of them)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathTokenExchange,
				Responses:    okResponse(tokenResponseFields),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "exchange"},
			},
		},
		HelpSynopsis:    pathTokenHelpSyn,
		HelpDescription: pathTokenHelpDesc,
	}
}

func (b *apikeysBackend) pathTokenExchange(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := strings.TrimSpace(d.Get("key").(string))
	if key == "" {
		return nil, userErrorf("key is required: the API key to exchange")
	}
	audience := strings.TrimSpace(d.Get("audience").(string))
	if audience == "" {
		return nil, userErrorf("audience is required: name the API the token is for (one of the key's audiences)")
	}
	requested := scopes.Normalize(scopes.Split(d.Get("scope").(string)))
	if err := scopes.ValidateAll(requested); err != nil {
		return nil, userErrorf("scope: %v", err)
	}
	in := record.VerifyInput{Key: key, Scopes: requested, Audience: audience}
	if req.Connection != nil {
		in.ClientIP = req.Connection.RemoteAddr
	}
	s := req.Storage
	res, err := b.verifyKey(ctx, s, in)
	if err != nil {
		return nil, err
	}
	if !res.Active || res.Key == nil {
		reason := record.RefusalReason(res.Code)
		if res.Code == record.CodeForbiddenScope && len(requested) == 0 {
			// No scope was asked for, so verify refused the key for having
			// none left at all: say that rather than "not every requested".
			reason = "the key has no effective scopes left (its role no longer allows any of them)"
		}
		return nil, userErrorf("token exchange refused: %s (code=%s)", reason, res.Code)
	}
	// An active key has at least one effective scope (checkKey), so the
	// token always carries a scope.
	granted := requested
	if len(granted) == 0 {
		granted = res.EffectiveScopes
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	exp, ok := tokenExpiry(now, cfg.TokenTTL, res.Key, res.Version)
	if !ok {
		return nil, userErrorf("token exchange refused: %s (code=%s)", record.RefusalReason(record.CodeExpired), record.CodeExpired)
	}
	set, err := b.signing.Current(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	jti, err := newTokenID()
	if err != nil {
		return nil, err
	}
	claims := jwtsign.Claims{
		Claims: jwt.Claims{
			Issuer:    tokenIssuer(cfg, req),
			Subject:   res.Key.Client,
			Audience:  jwt.Audience{audience},
			Expiry:    jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Scope: scopes.Join(granted),
	}
	token, err := set.Current.Sign(claims)
	if err != nil {
		return nil, err
	}
	version := 0
	if res.Version != nil {
		version = res.Version.Version
	}
	ev := eventFor(req, eventlog.TokenIssued, res.Key, version)
	ev.Details = map[string]string{
		"aud":   audience,
		"scope": claims.Scope,
		"jti":   jti,
		"kid":   set.Current.KID,
		"exp":   claims.Expiry.Time().UTC().Format(time.RFC3339),
	}
	if err := b.log.Append(ctx, s, ev); err != nil {
		return nil, err
	}
	expAt := claims.Expiry.Time().UTC()
	return &logical.Response{Data: map[string]interface{}{
		"token":      token,
		"token_type": "Bearer",
		"expires_at": expAt,
		"expires_in": int64(expAt.Sub(now).Round(time.Second) / time.Second),
		"kid":        set.Current.KID,
		"jti":        jti,
		"key_id":     res.Key.KeyID,
		"client":     res.Key.Client,
		"aud":        audience,
		"scope":      claims.Scope,
	}}, nil
}

// tokenExpiry is when a token exchanged at now expires: token_ttl later,
// but never after the key's own expiry (leases included) nor after the end
// of the grace of the version presented. ok is false when no time is left.
func tokenExpiry(now time.Time, ttl time.Duration, k *record.Key, v *record.KeyVersion) (time.Time, bool) {
	exp := now.Add(ttl)
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(exp) {
		exp = k.ExpiresAt
	}
	if v != nil && v.State == record.StatePrevious && !v.GraceEndsAt.IsZero() && v.GraceEndsAt.Before(exp) {
		exp = v.GraceEndsAt
	}
	// JWT times are whole seconds: round down so the token never outlives
	// the key, and demand at least one second of life.
	exp = exp.Truncate(time.Second)
	return exp, exp.After(now.Truncate(time.Second))
}

// tokenIssuer is the iss claim: config token_issuer, else a name derived
// from the mount path.
func tokenIssuer(cfg *record.Config, req *logical.Request) string {
	if cfg.TokenIssuer != "" {
		return cfg.TokenIssuer
	}
	if mp := strings.Trim(req.MountPoint, "/"); mp != "" {
		return defaultTokenIssuer + "/" + mp
	}
	return defaultTokenIssuer
}

func newTokenID() (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf[:]), nil
}

var tokenResponseFields = map[string]*framework.FieldSchema{
	"token":      field(framework.TypeString, "The signed token (JWT)."),
	"token_type": field(framework.TypeString, "Type of the token (Bearer)."),
	"expires_in": field(framework.TypeInt, "Seconds until the token expires."),
	"expires_at": field(framework.TypeString, "When the token expires (RFC 3339)."),
	"kid":        field(framework.TypeString, "Id of the signing key."),
	"jti":        field(framework.TypeString, "Unique id of the token."),
	"aud":        field(framework.TypeString, "Audience of the token."),
	"scope":      field(framework.TypeString, "Space-separated scopes of the token."),
	"client":     field(framework.TypeString, "Client of the key exchanged."),
	"key_id":     field(framework.TypeString, "Id of the key exchanged."),
}
