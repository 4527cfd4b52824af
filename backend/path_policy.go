package backend

import (
	"context"
	"sort"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const pathPolicyHelpSyn = `The effective public key policy of this mount.`
const pathPolicyHelpDesc = `
Renders, from the current config and roles, the policy auditors compare with
practice: key format and algorithms (random source, encoding, checksum,
storage hash), key lengths, rotation interval and grace per risk tier and
per role, leased-key lifetimes and retention, token exchange lifetimes and
signing, and the governance settings (approvals, review period, alert
thresholds).
Durations are in seconds. Nothing secret is included.
`

func (b *apikeysBackend) pathPolicy() []*framework.Path {
	return []*framework.Path{{
		Pattern:      "policy$",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "read", OperationSuffix: "key-policy"},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathPolicyRead, Responses: okResponse(policyResponseFields)},
		},
		HelpSynopsis:    pathPolicyHelpSyn,
		HelpDescription: pathPolicyHelpDesc,
	}}
}

func (b *apikeysBackend) pathPolicyRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	s := req.Storage
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	tiers := map[string]interface{}{}
	for _, name := range cfg.TierNames() {
		tiers[name] = map[string]interface{}{
			"rotation_period":  record.Secs(cfg.RiskTiers[name]),
			"grace_period":     record.Secs(cfg.DefaultGracePeriod),
			"max_grace_period": record.Secs(cfg.DefaultMaxGracePeriod),
		}
	}
	names, err := s.List(ctx, storageRolePrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	roles := map[string]interface{}{}
	for _, n := range names {
		r, err := b.getRole(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		roles[n] = roleLifetimeData(r, cfg)
	}
	return &logical.Response{Data: map[string]interface{}{
		"key_format": map[string]interface{}{
			"format":         "<prefix>_<environment>_<random><checksum>",
			"prefix":         cfg.KeyPrefix,
			"random_source":  "crypto/rand",
			"encoding":       "base62 (0-9A-Za-z)",
			"entropy_bits":   cfg.EntropyBits,
			"random_length":  keyformat.RandomLength(cfg.EntropyBits),
			"min_entropy":    keyformat.MinEntropyBits,
			"checksum":       "CRC32 (IEEE) of the rest of the key, base62",
			"checksum_chars": keyformat.ChecksumLen,
		},
		"storage": map[string]interface{}{
			"hash":           "HMAC-SHA256",
			"hmac_secret":    "256-bit per-mount secret in Vault storage (barrier-encrypted, seal-wrapped where available)",
			"comparison":     "constant-time",
			"plaintext_kept": "only for roles whose keys are retrievable (barrier-encrypted)",
		},
		"rotation": map[string]interface{}{
			"risk_tiers":               tiers,
			"default_risk_tier":        cfg.DefaultRiskTier,
			"default_grace_period":     record.Secs(cfg.DefaultGracePeriod),
			"default_max_grace_period": record.Secs(cfg.DefaultMaxGracePeriod),
			"overdue_tolerance":        record.Secs(governance.OverdueTolerance),
			"automatic":                "retrievable keys rotate on schedule; keys that are not retrievable are rotated by their owner (keys/<client>/<name>/rotate returns the new secret once) and are reported overdue until then",
		},
		"roles":       roles,
		"leased_keys": b.leasePolicy(cfg),
		"tokens": map[string]interface{}{
			"algorithm":                   "EdDSA (Ed25519)",
			"token_ttl":                   record.Secs(cfg.TokenTTL),
			"signing_key_rotation_period": record.Secs(cfg.SigningKeyRotationPeriod),
			"issuer":                      cfg.TokenIssuer,
		},
		"governance": map[string]interface{}{
			"approval_ttl_default":    record.Secs(defaultApprovalTTL),
			"approval_ttl_max":        record.Secs(maxApprovalTTL),
			"approvals":               "single-use; approver entity must differ from requester; tokens without an entity cannot approve",
			"review_period":           record.Secs(cfg.ReviewPeriod),
			"alert_window":            record.Secs(cfg.AlertWindow),
			"verify_burst_threshold":  cfg.VerifyBurstThreshold,
			"failed_verify_threshold": cfg.FailedVerifyThreshold,
			"leak_response":           "the whole key is revoked at once",
		},
	}}, nil
}

// leasePolicy describes leased-key lifetimes: per role ttl/max_ttl (in
// "roles"), capped by the mount's lease settings shown here, and how long a
// dead leased key is kept.
func (b *apikeysBackend) leasePolicy(cfg *record.Config) map[string]interface{} {
	retention := "dead leased keys (revoked, or past their expiry) are kept forever"
	if cfg.LeasedKeyRetention > 0 {
		retention = "dead leased keys (revoked, or past their expiry) are purged from storage, the inventory and revocation lists after leased_key_retention; their lifecycle-log history is kept"
	}
	d := map[string]interface{}{
		"lifetime":             "a role's ttl (renewable up to its max_ttl), capped by the mount's lease TTLs; revoked when the lease ends",
		"leased_key_retention": record.Secs(cfg.LeasedKeyRetention),
		"retention":            retention,
	}
	if sv := b.System(); sv != nil {
		d["mount_default_lease_ttl"] = record.Secs(sv.DefaultLeaseTTL())
		d["mount_max_lease_ttl"] = record.Secs(sv.MaxLeaseTTL())
	}
	return d
}

var policyResponseFields = map[string]*framework.FieldSchema{
	"key_format":  field(framework.TypeMap, "How keys are formed: prefix, format, entropy, checksum."),
	"storage":     field(framework.TypeMap, "How keys are stored: hash, comparison, plaintext kept."),
	"rotation":    field(framework.TypeMap, "Rotation policy: risk tiers, grace periods, automatic rotation."),
	"governance":  field(framework.TypeMap, "Approvals, reviews, alert thresholds and leak response."),
	"leased_keys": field(framework.TypeMap, "Lifetime and retention of leased keys."),
	"tokens":      field(framework.TypeMap, "Exchanged tokens: algorithm, issuer, ttl, signing key rotation."),
	"roles":       field(framework.TypeMap, "Effective policy of each role by name."),
}
