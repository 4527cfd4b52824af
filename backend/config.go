package backend

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/helper/jsonutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

const day = 24 * time.Hour

// Config is the mount-wide configuration (SPEC §2-§4, §6, §7).
type Config struct {
	KeyPrefix   string `json:"key_prefix"`
	EntropyBits int    `json:"entropy_bits"`

	// RiskTiers maps a tier name to its rotation period.
	RiskTiers             map[string]time.Duration `json:"risk_tiers"`
	DefaultRiskTier       string                   `json:"default_risk_tier"`
	DefaultGracePeriod    time.Duration            `json:"default_grace_period"`
	DefaultMaxGracePeriod time.Duration            `json:"default_max_grace_period"`

	// ReviewPeriod flags keys unused that long (0 disables).
	ReviewPeriod time.Duration `json:"review_period"`

	// LeasedKeyRetention is how long a dead leased key (revoked, or past
	// its expiry) is kept before the background purge deletes its record
	// and index entries (lease_purge.go); 0 keeps dead leased keys
	// forever. No omitempty: a stored 0 must not decode as the default.
	LeasedKeyRetention time.Duration `json:"leased_key_retention"`

	// Token exchange (SPEC §5).
	TokenTTL                 time.Duration `json:"token_ttl"`
	TokenIssuer              string        `json:"token_issuer"`
	SigningKeyRotationPeriod time.Duration `json:"signing_key_rotation_period"`

	// Alert thresholds (SPEC §7): counts within AlertWindow.
	AlertWindow           time.Duration `json:"alert_window"`
	VerifyBurstThreshold  int           `json:"verify_burst_threshold"`
	FailedVerifyThreshold int           `json:"failed_verify_threshold"`
}

// defaultConfig is what a fresh mount runs with.
func defaultConfig() *Config {
	return &Config{
		KeyPrefix:   "ak",
		EntropyBits: keyformat.DefaultEntropyBits,
		RiskTiers: map[string]time.Duration{
			"low":      180 * day,
			"medium":   90 * day,
			"high":     30 * day,
			"critical": 7 * day,
		},
		DefaultRiskTier:          "medium",
		DefaultGracePeriod:       1 * day,
		DefaultMaxGracePeriod:    7 * day,
		ReviewPeriod:             90 * day,
		LeasedKeyRetention:       defaultLeasedKeyRetention,
		TokenTTL:                 5 * time.Minute,
		SigningKeyRotationPeriod: 30 * day,
		AlertWindow:              time.Minute,
		VerifyBurstThreshold:     10000,
		FailedVerifyThreshold:    20,
	}
}

// Bounds shared by validation and help text.
const (
	minRotationPeriod = time.Minute
	maxRotationPeriod = 10 * 365 * day
	maxGracePeriod    = 365 * day
	minTokenTTL       = 10 * time.Second
	maxTokenTTL       = 24 * time.Hour
	minSigningPeriod  = time.Minute

	// defaultLeasedKeyRetention keeps a dead leased key for a week: long
	// enough to investigate a recent incident from the inventory and the
	// revocation list, short enough that a CI system issuing a key per
	// job does not grow storage without bound.
	defaultLeasedKeyRetention = 7 * day
	maxLeasedKeyRetention     = 10 * 365 * day
)

var tierNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// validate returns a user-facing error naming the first field that is out
// of its allowed range.
func (c *Config) validate() error {
	if err := keyformat.ValidPrefix(c.KeyPrefix); err != nil {
		return err
	}
	if c.EntropyBits < keyformat.MinEntropyBits || c.EntropyBits > keyformat.MaxEntropyBits {
		return fmt.Errorf("entropy_bits must be between %d and %d (got %d)", keyformat.MinEntropyBits, keyformat.MaxEntropyBits, c.EntropyBits)
	}
	if len(c.RiskTiers) == 0 {
		return fmt.Errorf("risk_tiers must define at least one tier, e.g. risk_tiers=medium=90d")
	}
	for _, name := range c.tierNames() {
		if !tierNameRe.MatchString(name) {
			return fmt.Errorf("risk_tiers: tier name %q must be 1-32 lowercase letters, digits, '_' or '-', starting with a letter", name)
		}
		if p := c.RiskTiers[name]; p < minRotationPeriod || p > maxRotationPeriod {
			return fmt.Errorf("risk_tiers: rotation period of tier %q must be between %s and %s (got %s)", name, minRotationPeriod, maxRotationPeriod, p)
		}
	}
	if _, ok := c.RiskTiers[c.DefaultRiskTier]; !ok {
		return fmt.Errorf("default_risk_tier %q is not one of the risk_tiers (%v)", c.DefaultRiskTier, c.tierNames())
	}
	if c.DefaultGracePeriod < 0 || c.DefaultGracePeriod > maxGracePeriod {
		return fmt.Errorf("default_grace_period must be between 0 and %s (got %s)", maxGracePeriod, c.DefaultGracePeriod)
	}
	if c.DefaultMaxGracePeriod < c.DefaultGracePeriod || c.DefaultMaxGracePeriod > maxGracePeriod {
		return fmt.Errorf("default_max_grace_period must be between default_grace_period (%s) and %s (got %s)", c.DefaultGracePeriod, maxGracePeriod, c.DefaultMaxGracePeriod)
	}
	if c.ReviewPeriod < 0 {
		return fmt.Errorf("review_period must be 0 (disabled) or positive (got %s)", c.ReviewPeriod)
	}
	if c.LeasedKeyRetention < 0 || c.LeasedKeyRetention > maxLeasedKeyRetention || (c.LeasedKeyRetention > 0 && c.LeasedKeyRetention < time.Second) {
		return fmt.Errorf("leased_key_retention must be 0 (keep dead leased keys forever) or between 1s and %s (got %s)", maxLeasedKeyRetention, c.LeasedKeyRetention)
	}
	if c.TokenTTL < minTokenTTL || c.TokenTTL > maxTokenTTL {
		return fmt.Errorf("token_ttl must be between %s and %s (got %s)", minTokenTTL, maxTokenTTL, c.TokenTTL)
	}
	if c.SigningKeyRotationPeriod < minSigningPeriod || c.SigningKeyRotationPeriod > maxRotationPeriod {
		return fmt.Errorf("signing_key_rotation_period must be between %s and %s (got %s)", minSigningPeriod, maxRotationPeriod, c.SigningKeyRotationPeriod)
	}
	if c.SigningKeyRotationPeriod <= c.TokenTTL {
		return fmt.Errorf("signing_key_rotation_period (%s) must be longer than token_ttl (%s) so outstanding tokens stay verifiable", c.SigningKeyRotationPeriod, c.TokenTTL)
	}
	if c.AlertWindow < time.Second || c.AlertWindow > day {
		return fmt.Errorf("alert_window must be between 1s and 24h (got %s)", c.AlertWindow)
	}
	if c.VerifyBurstThreshold < 1 {
		return fmt.Errorf("verify_burst_threshold must be at least 1 (got %d)", c.VerifyBurstThreshold)
	}
	if c.FailedVerifyThreshold < 1 {
		return fmt.Errorf("failed_verify_threshold must be at least 1 (got %d)", c.FailedVerifyThreshold)
	}
	return nil
}

func (c *Config) tierNames() []string {
	names := make([]string, 0, len(c.RiskTiers))
	for n := range c.RiskTiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Config) clone() *Config {
	out := *c
	out.RiskTiers = make(map[string]time.Duration, len(c.RiskTiers))
	for k, v := range c.RiskTiers {
		out.RiskTiers[k] = v
	}
	return &out
}

// config returns the mount configuration (defaults when none is stored).
// The result is shared: callers must not modify it (use clone).
func (b *apikeysBackend) config(ctx context.Context, s logical.Storage) (*Config, error) {
	b.cache.mu.RLock()
	cfg := b.cache.config
	b.cache.mu.RUnlock()
	if cfg != nil {
		return cfg, nil
	}
	// Fill under the write lock, which putConfig, deleteConfig and
	// invalidate also hold: a fill that read storage before a concurrent
	// change can then never store the outdated copy after it.
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if b.cache.config != nil {
		return b.cache.config, nil
	}
	entry, err := s.Get(ctx, storageConfig)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg = defaultConfig()
	if entry != nil {
		if cfg, err = decodeConfig(entry.Value); err != nil {
			return nil, err
		}
	}
	b.cache.config = cfg
	return cfg, nil
}

// decodeConfig reads a stored config back exactly as it was written.
// Fields the record lacks (stored by an older version) take their default,
// but a stored value always wins over the default, whole: decoding JSON
// into a non-empty map adds to it, which would bring back every default
// tier an operator removed.
func decodeConfig(raw []byte) (*Config, error) {
	cfg := defaultConfig()
	cfg.RiskTiers = nil
	if err := jsonutil.DecodeJSON(raw, cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	if cfg.RiskTiers == nil {
		cfg.RiskTiers = defaultConfig().RiskTiers
	}
	return cfg, nil
}

func (b *apikeysBackend) putConfig(ctx context.Context, s logical.Storage, cfg *Config) error {
	entry, err := logical.StorageEntryJSON(storageConfig, cfg)
	if err != nil {
		return err
	}
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if err := putEntry(ctx, s, entry, "config"); err != nil {
		return err
	}
	b.cache.config = cfg
	return nil
}

func (b *apikeysBackend) deleteConfig(ctx context.Context, s logical.Storage) error {
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if err := s.Delete(ctx, storageConfig); err != nil {
		return fmt.Errorf("deleting config: %w", err)
	}
	b.cache.config = nil
	return nil
}
