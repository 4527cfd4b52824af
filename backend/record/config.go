package record

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/hashicorp/vault/sdk/helper/jsonutil"
)

const Day = 24 * time.Hour

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
	// and index entries (backend/lease_purge.go); 0 keeps dead leased keys
	// forever. No omitempty: a stored 0 must not decode as the default.
	LeasedKeyRetention time.Duration `json:"leased_key_retention"`
	// ApprovalRequestRetention is how long an approval request is kept
	// after its expires_at (by then it was used, denied or expired) before
	// the background prune deletes it (backend/request_retention.go); 0
	// keeps them forever. No omitempty, as above.
	ApprovalRequestRetention time.Duration `json:"approval_request_retention"`
	// ArchivedKeyRetention is how long the archived record of a revoked
	// key whose name was re-issued is kept after the re-issue before the
	// background prune deletes it and its index entries
	// (backend/archive_retention.go); 0 keeps them forever.
	ArchivedKeyRetention time.Duration `json:"archived_key_retention"`

	// Token exchange (SPEC §5).
	TokenTTL                 time.Duration `json:"token_ttl"`
	TokenIssuer              string        `json:"token_issuer"`
	SigningKeyRotationPeriod time.Duration `json:"signing_key_rotation_period"`

	// RotationNoticeLeadTimes are how long before a key's rotation is due
	// its owner is given advance notice, when the owner must rotate it by
	// hand (not retrievable, so not rotated automatically): a
	// key.rotation_due_soon log entry as each is reached. Distinct, longest
	// first; empty disables the notices. No omitempty: a stored empty list
	// must not decode as the default.
	RotationNoticeLeadTimes []time.Duration `json:"rotation_notice_lead_times"`

	// Alert thresholds (SPEC §7): counts within AlertWindow.
	AlertWindow           time.Duration `json:"alert_window"`
	VerifyBurstThreshold  int           `json:"verify_burst_threshold"`
	FailedVerifyThreshold int           `json:"failed_verify_threshold"`

	// VerifyAudienceOptional lets a verify without audience accept a key
	// whose role names audiences; off, such a verify is forbidden_audience
	// so a gateway cannot accept keys issued for another API by omission.
	VerifyAudienceOptional bool `json:"verify_audience_optional,omitempty"`

	// MetricsClients are the clients whose verify outcomes the metrics
	// count under their own client label; every other client's are counted
	// together (MetricsClientOther). Clients are unbounded in number and
	// a label value per client would be unbounded too, so the operator
	// names the few worth a series (at most MaxMetricsClients).
	MetricsClients []string `json:"metrics_clients,omitempty"`
}

// MaxMetricsClients bounds metrics_clients, and with it the client label
// of apikeys_verify_by_client_total: at most this many values plus
// MetricsClientOther and MetricsClientNone, each times the verify outcomes.
const MaxMetricsClients = 50

// The client label values of verify outcomes not counted under a client of
// their own. They start with '_', which no client name can (NameRe), so
// they never collide with one.
const (
	// MetricsClientOther counts the clients not in metrics_clients.
	MetricsClientOther = "_other"
	// MetricsClientNone counts the answers that matched no key
	// (not_found, malformed), so had no client.
	MetricsClientNone = "_none"
)

// DefaultConfig is what a fresh mount runs with.
func DefaultConfig() *Config {
	return &Config{
		KeyPrefix:   "ak",
		EntropyBits: keyformat.DefaultEntropyBits,
		RiskTiers: map[string]time.Duration{
			"low":      180 * Day,
			"medium":   90 * Day,
			"high":     30 * Day,
			"critical": 7 * Day,
		},
		DefaultRiskTier:          "medium",
		DefaultGracePeriod:       1 * Day,
		DefaultMaxGracePeriod:    7 * Day,
		ReviewPeriod:             90 * Day,
		LeasedKeyRetention:       DefaultLeasedKeyRetention,
		ApprovalRequestRetention: DefaultApprovalRequestRetention,
		ArchivedKeyRetention:     DefaultArchivedKeyRetention,
		TokenTTL:                 5 * time.Minute,
		SigningKeyRotationPeriod: 30 * Day,
		RotationNoticeLeadTimes:  []time.Duration{14 * Day, 3 * Day, 1 * Day},
		AlertWindow:              time.Minute,
		VerifyBurstThreshold:     10000,
		FailedVerifyThreshold:    20,
	}
}

// Bounds shared by validation and help text.
const (
	MinRotationPeriod = time.Minute
	MaxRotationPeriod = 10 * 365 * Day
	MaxGracePeriod    = 365 * Day
	MinTokenTTL       = 10 * time.Second
	MaxTokenTTL       = 24 * time.Hour
	MinSigningPeriod  = time.Minute

	// DefaultLeasedKeyRetention keeps a dead leased key for a week: long
	// enough to investigate a recent incident from the inventory and the
	// revocation list, short enough that a CI system issuing a key per
	// job does not grow storage without bound.
	DefaultLeasedKeyRetention = 7 * Day
	MaxLeasedKeyRetention     = 10 * 365 * Day

	// DefaultApprovalRequestRetention keeps an ended approval request for
	// 90 days, as ended bulk operations and acknowledged alerts are: long
	// enough for a quarterly access review to read who asked, who decided
	// and which key it served from requests/; the lifecycle log keeps the
	// request.created, request.approved/denied and request.used entries
	// after that.
	DefaultApprovalRequestRetention = 90 * Day
	// DefaultArchivedKeyRetention keeps the archived record of a revoked,
	// re-issued key for 90 days: its revoked versions stay on the
	// client's revocation list (deny lists) and verify answers "revoked"
	// for its secrets through a review period; after it, verify answers
	// not_found, which refuses them all the same.
	DefaultArchivedKeyRetention = 90 * Day
	// MaxRecordRetention bounds both.
	MaxRecordRetention = 10 * 365 * Day

	// MaxNoticeLeadTimes bounds rotation_notice_lead_times: each is a
	// log entry (and a webhook) per key and due time.
	MaxNoticeLeadTimes = 5
	// MaxNoticeLead is the longest advance notice, of a rotation (a
	// rotation_notice_lead_times entry) or of an expiry (a role's
	// expiry_notice).
	MaxNoticeLead = 365 * Day
)

var TierNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate returns a user-facing error naming the first field that is out
// of its allowed range.
func (c *Config) Validate() error {
	if err := validateMetricsClients(c.MetricsClients); err != nil {
		return err
	}
	if err := keyformat.ValidPrefix(c.KeyPrefix); err != nil {
		return err
	}
	if c.EntropyBits < keyformat.MinEntropyBits || c.EntropyBits > keyformat.MaxEntropyBits {
		return fmt.Errorf("entropy_bits must be between %d and %d (got %d)", keyformat.MinEntropyBits, keyformat.MaxEntropyBits, c.EntropyBits)
	}
	if len(c.RiskTiers) == 0 {
		return fmt.Errorf("risk_tiers must define at least one tier, e.g. risk_tiers=medium=90d")
	}
	for _, name := range c.TierNames() {
		if !TierNameRe.MatchString(name) {
			return fmt.Errorf("risk_tiers: tier name %q must be 1-32 lowercase letters, digits, '_' or '-', starting with a letter", name)
		}
		if p := c.RiskTiers[name]; p < MinRotationPeriod || p > MaxRotationPeriod {
			return fmt.Errorf("risk_tiers: rotation period of tier %q must be between %s and %s (got %s)", name, MinRotationPeriod, MaxRotationPeriod, p)
		}
	}
	if _, ok := c.RiskTiers[c.DefaultRiskTier]; !ok {
		return fmt.Errorf("default_risk_tier %q is not one of the risk_tiers (%v)", c.DefaultRiskTier, c.TierNames())
	}
	if c.DefaultGracePeriod < 0 || c.DefaultGracePeriod > MaxGracePeriod {
		return fmt.Errorf("default_grace_period must be between 0 and %s (got %s)", MaxGracePeriod, c.DefaultGracePeriod)
	}
	if c.DefaultMaxGracePeriod < c.DefaultGracePeriod || c.DefaultMaxGracePeriod > MaxGracePeriod {
		return fmt.Errorf("default_max_grace_period must be between default_grace_period (%s) and %s (got %s)", c.DefaultGracePeriod, MaxGracePeriod, c.DefaultMaxGracePeriod)
	}
	if c.ReviewPeriod < 0 {
		return fmt.Errorf("review_period must be 0 (disabled) or positive (got %s)", c.ReviewPeriod)
	}
	if c.LeasedKeyRetention < 0 || c.LeasedKeyRetention > MaxLeasedKeyRetention || (c.LeasedKeyRetention > 0 && c.LeasedKeyRetention < time.Second) {
		return fmt.Errorf("leased_key_retention must be 0 (keep dead leased keys forever) or between 1s and %s (got %s)", MaxLeasedKeyRetention, c.LeasedKeyRetention)
	}
	if err := validRetention("approval_request_retention", "ended approval requests", c.ApprovalRequestRetention); err != nil {
		return err
	}
	if err := validRetention("archived_key_retention", "archived keys", c.ArchivedKeyRetention); err != nil {
		return err
	}
	if c.TokenTTL < MinTokenTTL || c.TokenTTL > MaxTokenTTL {
		return fmt.Errorf("token_ttl must be between %s and %s (got %s)", MinTokenTTL, MaxTokenTTL, c.TokenTTL)
	}
	if c.SigningKeyRotationPeriod < MinSigningPeriod || c.SigningKeyRotationPeriod > MaxRotationPeriod {
		return fmt.Errorf("signing_key_rotation_period must be between %s and %s (got %s)", MinSigningPeriod, MaxRotationPeriod, c.SigningKeyRotationPeriod)
	}
	if c.SigningKeyRotationPeriod <= c.TokenTTL {
		return fmt.Errorf("signing_key_rotation_period (%s) must be longer than token_ttl (%s) so outstanding tokens stay verifiable", c.SigningKeyRotationPeriod, c.TokenTTL)
	}
	if err := validLeadTimes(c.RotationNoticeLeadTimes); err != nil {
		return err
	}
	if c.AlertWindow < time.Second || c.AlertWindow > Day {
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

func validRetention(field, what string, d time.Duration) error {
	if d < 0 || d > MaxRecordRetention || (d > 0 && d < time.Second) {
		return fmt.Errorf("%s must be 0 (keep %s forever) or between 1s and %s (got %s)", field, what, MaxRecordRetention, d)
	}
	return nil
}

func validLeadTimes(leads []time.Duration) error {
	if len(leads) > MaxNoticeLeadTimes {
		return fmt.Errorf("rotation_notice_lead_times takes at most %d lead times (got %d)", MaxNoticeLeadTimes, len(leads))
	}
	for i, d := range leads {
		if d <= 0 || d > MaxNoticeLead {
			return fmt.Errorf("rotation_notice_lead_times: each lead time must be positive and at most %s (got %s)", MaxNoticeLead, d)
		}
		if i > 0 && d >= leads[i-1] {
			return fmt.Errorf("rotation_notice_lead_times must be distinct and longest first (got %s after %s)", d, leads[i-1])
		}
	}
	return nil
}

// NormalizeLeadTimes returns leads without duplicates, longest first, as
// they are stored: the order a request lists them in means nothing.
func NormalizeLeadTimes(leads []time.Duration) []time.Duration {
	out := slices.Clone(leads)
	slices.SortFunc(out, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	return slices.Compact(out)
}

func (c *Config) TierNames() []string {
	names := make([]string, 0, len(c.RiskTiers))
	for n := range c.RiskTiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Config) Clone() *Config {
	out := *c
	out.RotationNoticeLeadTimes = slices.Clone(c.RotationNoticeLeadTimes)
	out.MetricsClients = slices.Clone(c.MetricsClients)
	out.RiskTiers = make(map[string]time.Duration, len(c.RiskTiers))
	for k, v := range c.RiskTiers {
		out.RiskTiers[k] = v
	}
	return &out
}

// DecodeConfig reads a stored config back exactly as it was written.
// Fields the record lacks (stored by an older version) take their default,
// but a stored value always wins over the default, whole: decoding JSON
// into a non-empty map adds to it, which would bring back every default
// tier an operator removed.
func DecodeConfig(raw []byte) (*Config, error) {
	cfg := DefaultConfig()
	cfg.RiskTiers = nil
	if err := jsonutil.DecodeJSON(raw, cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	if cfg.RiskTiers == nil {
		cfg.RiskTiers = DefaultConfig().RiskTiers
	}
	return cfg, nil
}

func validateMetricsClients(names []string) error {
	if len(names) > MaxMetricsClients {
		return fmt.Errorf("metrics_clients: at most %d clients (got %d); the others are counted together as %s", MaxMetricsClients, len(names), MetricsClientOther)
	}
	for _, n := range names {
		if err := ValidateName("metrics_clients: client", n); err != nil {
			return err
		}
	}
	return nil
}

// NormalizeMetricsClients drops empty entries and duplicates and sorts
// the rest, so the stored list reads the same however it was written.
func NormalizeMetricsClients(raw []string) []string {
	out := make([]string, 0, len(raw))
	for _, n := range raw {
		if n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
