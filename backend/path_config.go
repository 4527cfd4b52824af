package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-secure-stdlib/parseutil"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// operationPrefix names this plugin's operations in the OpenAPI document.
const operationPrefix = "apikeys"

const pathConfigHelpSyn = `Configure the mount: key format, risk tiers, rotation defaults, alerts and token signing.`
const pathConfigHelpDesc = `
Mount-wide settings. Writing updates only the fields given; the others keep
their current (or default) values. Every value is validated and nothing is
stored if any field is out of range. Deleting the configuration restores the
defaults.

Key format: keys look like <key_prefix>_<environment>_<random><checksum>,
where random carries entropy_bits bits (at least 128) and checksum is a
CRC32 that lets scanners and verify reject mistyped keys without a lookup.

Risk tiers map a tier name to a rotation period, e.g.
  vault write apikeys/config risk_tiers=low=180d risk_tiers=high=30d
Roles pick a tier with risk_tier; roles without one use default_risk_tier.

A change of risk_tiers, default_risk_tier or default_grace_period is refused
when it would leave an existing role whose grace is not shorter than the
shortest time between two of its rotations (each rotation retires the
previous version at once); the error names the roles to change first.

Owners of keys that are not rotated automatically (not retrievable) get
advance notice before a rotation is due: a key.rotation_due_soon entry in
the lifecycle log, delivered as a webhook like every entry, as each of
rotation_notice_lead_times is reached (default 14d,3d,1d; empty disables).

Dead leased keys (from creds/, revoked or past their expiry) are purged from
storage leased_key_retention after they died (default 7d; 0 keeps them
forever), by the periodic function or at once with "tidy". Their history
stays in the lifecycle log.

Approval requests are deleted approval_request_retention after their
expires_at, and the archived record of a revoked key whose name was
re-issued archived_key_retention after the re-issue (both default 90d; 0
keeps them forever), by the periodic function in bounded steps, each batch
logged first (requests.pruned, archived_keys.pruned).
`

func (b *apikeysBackend) pathConfig() []*framework.Path {
	return []*framework.Path{{
		Pattern: "config$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"key_prefix": {
				Type:        framework.TypeString,
				Description: "Prefix of every issued key, 1-16 lowercase letters or digits starting with a letter (default \"ak\"). Lets secret scanners recognise the keys.",
				Default:     "ak",
			},
			"entropy_bits": {
				Type:        framework.TypeInt,
				Description: "Bits of randomness in each key, between 128 and 1024 (default 256).",
				Default:     256,
			},
			"risk_tiers": {
				Type:        framework.TypeKVPairs,
				Description: "Rotation period per risk tier, as tier=duration pairs (e.g. low=180d, critical=7d). Replaces the whole table. Periods between 1m and 3650d, longer than the grace of every role using the tier. Default low=180d medium=90d high=30d critical=7d.",
			},
			"default_risk_tier": {
				Type:        framework.TypeString,
				Description: "Tier used by roles that set none; must be one of risk_tiers (default \"medium\").",
				Default:     "medium",
			},
			"default_grace_period": {
				Type:        framework.TypeDurationSecond,
				Description: "How long the previous version of a rotated key stays accepted, for roles that set no grace_period (0 to 365d, default 24h). Must be shorter than the rotation interval of every such role.",
				Default:     "24h",
			},
			"default_max_grace_period": {
				Type:        framework.TypeDurationSecond,
				Description: "Upper bound on grace when retirement waits for a new version to be adopted (at least default_grace_period, at most 365d, default 7d).",
				Default:     "168h",
			},
			"review_period": {
				Type:        framework.TypeDurationSecond,
				Description: "Keys unused this long are flagged for review in the inventory and alerts (0 disables, default 90d).",
				Default:     "2160h",
			},
			"leased_key_retention": {
				Type:        framework.TypeDurationSecond,
				Description: "How long a dead leased key (revoked, or past its expiry) stays in storage, the inventory and the client's revocation list before the background purge deletes it; its lifecycle-log history is kept. 0 keeps dead leased keys forever; otherwise 1s to 3650d (default 7d).",
				Default:     "168h",
			},
			"approval_request_retention": {
				Type:        framework.TypeDurationSecond,
				Description: "How long an approval request stays in storage and the requests list after its expires_at (by then it was used, denied or expired) before the background prune deletes it; its request.* lifecycle-log entries are kept. 0 keeps them forever; otherwise 1s to 3650d (default 90d).",
				Default:     "2160h",
			},
			"archived_key_retention": {
				Type:        framework.TypeDurationSecond,
				Description: "How long the archived record of a revoked key whose name was re-issued stays in storage and the client's revocation list after the re-issue before the background prune deletes it and its index entries (verify then answers not_found for its secrets instead of revoked); its lifecycle-log history is kept. 0 keeps them forever; otherwise 1s to 3650d (default 90d).",
				Default:     "2160h",
			},
			"token_ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "Lifetime of JWTs issued by the token exchange (10s to 24h, default 5m). Never beyond the exchanged key's own expiry.",
				Default:     "5m",
			},
			"token_issuer": {
				Type:        framework.TypeString,
				Description: "The iss claim of exchanged JWTs; set it to this mount's API URL, e.g. https://vault.example.com/v1/apikeys (default: vault-plugin-secrets-apikeys/<mount path>, as a plugin cannot learn Vault's external address).",
			},
			"signing_key_rotation_period": {
				Type:        framework.TypeDurationSecond,
				Description: "How often the token signing key rotates (1m to 3650d, longer than token_ttl; default 30d).",
				Default:     "720h",
			},
			"rotation_notice_lead_times": {
				Type:        framework.TypeCommaStringSlice,
				Description: "How long before a rotation is due the owner of a key that is not rotated automatically (not retrievable) is given advance notice: a key.rotation_due_soon lifecycle-log entry (and webhook) as each lead time is reached, once per lead time and due time; a key first seen within several gets one notice, for the shortest. Comma-separated durations (e.g. 14d,3d,1d or 336h,72h,24h), at most 5, each positive and at most 8760h; duplicates are dropped and they are stored longest first. An empty value disables the notices. Default 14d,3d,1d. Overdue rotations are the rotation_overdue alert.",
				Default:     "336h,72h,24h",
			},
			"alert_window": {
				Type:        framework.TypeDurationSecond,
				Description: "Window over which verify bursts and failed-verify bursts are counted (1s to 24h, default 1m).",
				Default:     "1m",
			},
			"verify_burst_threshold": {
				Type:        framework.TypeInt,
				Description: "Verifies of one key within alert_window that raise a burst alert (at least 1, default 10000).",
				Default:     10000,
			},
			"failed_verify_threshold": {
				Type:        framework.TypeInt,
				Description: "Failed verifies (unknown or malformed keys) within alert_window that raise a guessing alert (at least 1, default 20).",
				Default:     20,
			},
			"metrics_clients": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Clients whose verify outcomes the metrics count under their own client label (apikeys_verify_by_client_total), at most 50; the others are counted together as client=\"_other\", and answers that matched no key as client=\"_none\". Replaces the whole list; an empty value clears it (default: none).",
			},
			"verify_audience_optional": {
				Type:        framework.TypeBool,
				Description: "Accept a verify without audience for keys whose role names audiences (default false: such a verify answers forbidden_audience, so a gateway that forgets its audience cannot accept keys issued for another API).",
				Default:     false,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				Responses:    okResponse(configResponseFields),
				DisplayAttrs: &framework.DisplayAttributes{OperationSuffix: "configuration"},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathConfigWrite,
				Responses:    okResponse(configResponseFields),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"},
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:     b.pathConfigWrite,
				Responses:    okResponse(configResponseFields),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:     b.pathConfigDelete,
				Responses:    noContentResponse(),
				DisplayAttrs: &framework.DisplayAttributes{OperationSuffix: "configuration"},
			},
		},
		ExistenceCheck:  func(context.Context, *logical.Request, *framework.FieldData) (bool, error) { return true, nil },
		HelpSynopsis:    pathConfigHelpSyn,
		HelpDescription: pathConfigHelpDesc,
	}}
}

func (b *apikeysBackend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: configData(cfg)}, nil
}

func configData(c *record.Config) map[string]interface{} {
	tiers := make(map[string]int64, len(c.RiskTiers))
	for name, p := range c.RiskTiers {
		tiers[name] = int64(p / time.Second)
	}
	return map[string]interface{}{
		"key_prefix":                  c.KeyPrefix,
		"entropy_bits":                c.EntropyBits,
		"risk_tiers":                  tiers,
		"default_risk_tier":           c.DefaultRiskTier,
		"default_grace_period":        int64(c.DefaultGracePeriod / time.Second),
		"default_max_grace_period":    int64(c.DefaultMaxGracePeriod / time.Second),
		"review_period":               int64(c.ReviewPeriod / time.Second),
		"leased_key_retention":        int64(c.LeasedKeyRetention / time.Second),
		"approval_request_retention":  int64(c.ApprovalRequestRetention / time.Second),
		"archived_key_retention":      int64(c.ArchivedKeyRetention / time.Second),
		"token_ttl":                   int64(c.TokenTTL / time.Second),
		"token_issuer":                c.TokenIssuer,
		"signing_key_rotation_period": int64(c.SigningKeyRotationPeriod / time.Second),
		"alert_window":                int64(c.AlertWindow / time.Second),
		"rotation_notice_lead_times":  leadTimeSecs(c.RotationNoticeLeadTimes),
		"verify_burst_threshold":      c.VerifyBurstThreshold,
		"failed_verify_threshold":     c.FailedVerifyThreshold,
		"verify_audience_optional":    c.VerifyAudienceOptional,
		"metrics_clients":             metricsClientsOf(c),
	}
}

// leadTimeSecs is a list of lead times in seconds, as other durations are
// read back; never null.
func leadTimeSecs(leads []time.Duration) []int64 {
	out := make([]int64, len(leads))
	for i, d := range leads {
		out[i] = int64(d / time.Second)
	}
	return out
}

func (b *apikeysBackend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// Serialise config writes so two concurrent partial updates merge
	// rather than overwrite each other.
	b.configMu.Lock()
	defer b.configMu.Unlock()

	current, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := current.Clone()
	if err := applyConfigFields(cfg, d); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if err := cfg.Validate(); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if err := b.checkRolesUnderConfig(ctx, req.Storage, current, cfg, b.clock.Now()); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if cfg.TokenTTL < current.TokenTTL {
		// Tokens already signed may live the old token_ttl.
		if err := b.signing.NoteTokenTTL(ctx, req.Storage, current.TokenTTL); err != nil {
			return nil, err
		}
	}
	if err := b.putConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	if err := b.rescheduleAfterConfigChange(ctx, req.Storage, current, cfg); err != nil {
		return nil, err
	}
	if err := b.log.Append(ctx, req.Storage, eventFromRequest(req, eventlog.ConfigUpdated)); err != nil {
		return nil, err
	}
	return &logical.Response{Data: configData(cfg)}, nil
}

// applyConfigFields copies the fields present in the request onto cfg.
func applyConfigFields(cfg *record.Config, d *framework.FieldData) error {
	if v, ok := d.GetOk("key_prefix"); ok {
		cfg.KeyPrefix = v.(string)
	}
	if v, ok := d.GetOk("entropy_bits"); ok {
		cfg.EntropyBits = v.(int)
	}
	if v, ok := d.GetOk("risk_tiers"); ok {
		tiers := make(map[string]time.Duration)
		for name, raw := range v.(map[string]string) {
			p, err := parseutil.ParseDurationSecond(raw)
			if err != nil {
				return fmt.Errorf("risk_tiers: tier %q has an invalid duration %q (use e.g. 90d, 720h or 30m)", name, raw)
			}
			tiers[name] = p
		}
		cfg.RiskTiers = tiers
	}
	if v, ok := d.GetOk("default_risk_tier"); ok {
		cfg.DefaultRiskTier = v.(string)
	}
	durations := map[string]*time.Duration{
		"default_grace_period":        &cfg.DefaultGracePeriod,
		"default_max_grace_period":    &cfg.DefaultMaxGracePeriod,
		"review_period":               &cfg.ReviewPeriod,
		"leased_key_retention":        &cfg.LeasedKeyRetention,
		"approval_request_retention":  &cfg.ApprovalRequestRetention,
		"archived_key_retention":      &cfg.ArchivedKeyRetention,
		"token_ttl":                   &cfg.TokenTTL,
		"signing_key_rotation_period": &cfg.SigningKeyRotationPeriod,
		"alert_window":                &cfg.AlertWindow,
	}
	for field, dst := range durations {
		if v, ok := d.GetOk(field); ok {
			*dst = time.Duration(v.(int)) * time.Second
		}
	}
	if v, ok := d.GetOk("token_issuer"); ok {
		cfg.TokenIssuer = v.(string)
	}
	if v, ok := d.GetOk("rotation_notice_lead_times"); ok {
		leads, err := parseLeadTimes(v.([]string))
		if err != nil {
			return err
		}
		cfg.RotationNoticeLeadTimes = leads
	}
	if v, ok := d.GetOk("verify_burst_threshold"); ok {
		cfg.VerifyBurstThreshold = v.(int)
	}
	if v, ok := d.GetOk("failed_verify_threshold"); ok {
		cfg.FailedVerifyThreshold = v.(int)
	}
	if v, ok := d.GetOk("verify_audience_optional"); ok {
		cfg.VerifyAudienceOptional = v.(bool)
	}
	if v, ok := d.GetOk("metrics_clients"); ok {
		cfg.MetricsClients = record.NormalizeMetricsClients(v.([]string))
	}
	return nil
}

// parseLeadTimes reads rotation_notice_lead_times, whole seconds as every
// other duration field is, without duplicates and longest first. An empty
// list (an empty value) is kept: it disables the notices.
func parseLeadTimes(raw []string) ([]time.Duration, error) {
	leads := make([]time.Duration, 0, len(raw))
	for _, r := range raw {
		if r == "" {
			continue // "72h," or a lone empty value
		}
		d, err := parseutil.ParseDurationSecond(r)
		if err != nil {
			return nil, fmt.Errorf("rotation_notice_lead_times: %q is not a duration (use e.g. 14d, 72h or 30m)", r)
		}
		leads = append(leads, d.Truncate(time.Second))
	}
	return record.NormalizeLeadTimes(leads), nil
}

func (b *apikeysBackend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	current, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if err := b.checkRolesUnderConfig(ctx, req.Storage, current, record.DefaultConfig(), b.clock.Now()); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if err := b.deleteConfig(ctx, req.Storage); err != nil {
		return nil, err
	}
	if err := b.rescheduleAfterConfigChange(ctx, req.Storage, current, record.DefaultConfig()); err != nil {
		return nil, err
	}
	if err := b.log.Append(ctx, req.Storage, eventFromRequest(req, eventlog.ConfigUpdated)); err != nil {
		return nil, err
	}
	return nil, nil
}

// metricsClientsOf is metrics_clients as read back; never null.
func metricsClientsOf(c *record.Config) []string {
	if c.MetricsClients == nil {
		return []string{}
	}
	return c.MetricsClients
}

var configResponseFields = map[string]*framework.FieldSchema{
	"metrics_clients":             field(framework.TypeCommaStringSlice, "Clients counted under their own client label in the verify metrics."),
	"verify_audience_optional":    field(framework.TypeBool, "Whether a verify without audience accepts keys whose role names audiences."),
	"key_prefix":                  field(framework.TypeString, "Prefix of issued keys."),
	"entropy_bits":                field(framework.TypeInt, "Entropy bits of the random part of keys."),
	"default_grace_period":        field(framework.TypeDurationSecond, "Default grace period in seconds."),
	"default_max_grace_period":    field(framework.TypeDurationSecond, "Default maximum grace period in seconds."),
	"default_risk_tier":           field(framework.TypeString, "Risk tier of roles that name none."),
	"risk_tiers":                  field(framework.TypeMap, "Rotation period in seconds by risk tier."),
	"review_period":               field(framework.TypeDurationSecond, "Seconds between access reviews of a key."),
	"failed_verify_threshold":     field(framework.TypeInt, "Failed verifications per window that raise an alert."),
	"verify_burst_threshold":      field(framework.TypeInt, "Verifications per window of one key that raise an alert."),
	"alert_window":                field(framework.TypeDurationSecond, "Window in seconds the thresholds count over."),
	"rotation_notice_lead_times":  field(framework.TypeCommaIntSlice, "Seconds before a due rotation that owners of keys not rotated automatically are notified, longest first."),
	"leased_key_retention":        field(framework.TypeDurationSecond, "Seconds revoked leased keys are kept for the record."),
	"approval_request_retention":  field(framework.TypeDurationSecond, "Seconds an approval request is kept after its expiry."),
	"archived_key_retention":      field(framework.TypeDurationSecond, "Seconds the archived record of a re-issued key is kept."),
	"token_issuer":                field(framework.TypeString, "Issuer (iss) of exchanged tokens."),
	"token_ttl":                   field(framework.TypeDurationSecond, "Lifetime in seconds of exchanged tokens."),
	"signing_key_rotation_period": field(framework.TypeDurationSecond, "Seconds between rotations of the token signing key."),
}
