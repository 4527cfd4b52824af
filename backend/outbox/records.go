package outbox

import (
	"time"
)

// Storage layout. Endpoints hold their signing secrets, so the backend
// seal-wraps EndpointPrefix.
const (
	EndpointPrefix = "notifications/endpoints/"
	StatePrefix    = "notifications/state/"
	ConfigKey      = "notifications/config"
	// FollowerKey holds the cursors of the response policies and the
	// Vault event bus.
	FollowerKey = "notifications/follower"
)

// Bounds of one endpoint's state record: it is rewritten after every batch
// and must stay far below the storage's largest entry (1 MiB with Raft)
// whatever the backlog.
const (
	MaxPending = 256
	MaxRecent  = 100
	MaxDead    = 100
	MaxReplays = 32
)

// Endpoint is a webhook destination.
type Endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// EventTypes are patterns (notify.MatchType) of the event types sent.
	EventTypes  []string `json:"event_types"`
	Clients     []string `json:"clients,omitempty"`
	Owners      []string `json:"owners,omitempty"`
	MinSeverity string   `json:"min_severity,omitempty"`
	Enabled     bool     `json:"enabled"`
	Description string   `json:"description,omitempty"`
	// Secrets sign deliveries: the newest first; an older one stays until
	// its ExpiresAt so receivers can switch without missing a delivery.
	Secrets   []Secret  `json:"secrets"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Secret is one signing secret of an endpoint ("whsec_..."); it is shown
// once, when generated.
type Secret struct {
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for the current secret.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// LiveSecrets are the secrets that still sign at now.
func (e *Endpoint) LiveSecrets(now time.Time) []Secret {
	out := make([]Secret, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// Config is the mount's notification settings.
type Config struct {
	// RetryWindow bounds how long a delivery is retried before it is
	// dead-lettered.
	RetryWindow time.Duration `json:"retry_window"`
	// AllowHTTP, AllowLoopback and AllowPrivate relax the outbound policy
	// (notify.Policy); all off by default.
	AllowHTTP     bool `json:"allow_http"`
	AllowLoopback bool `json:"allow_loopback"`
	AllowPrivate  bool `json:"allow_private"`
	// Timeout bounds one delivery attempt, reading the response included.
	Timeout time.Duration `json:"timeout"`
	// VaultEvents publishes every event to Vault's event bus too.
	VaultEvents bool `json:"vault_events"`
}

// Defaults of Config.
const (
	DefaultRetryWindow = 24 * time.Hour
	DefaultTimeout     = 10 * time.Second
	MaxResponseBytes   = 64 << 10
)

// DefaultConfig is the configuration of a mount that never set one.
func DefaultConfig() Config {
	return Config{RetryWindow: DefaultRetryWindow, Timeout: DefaultTimeout}
}

// State is one endpoint's delivery state.
type State struct {
	// Cursor is the last log sequence number taken: every entry up to it
	// was delivered, is pending, was dead-lettered or did not match.
	Cursor uint64 `json:"cursor"`
	// Pending are failed deliveries waiting for a retry, oldest first.
	Pending []Pending `json:"pending,omitempty"`
	// Replays are ranges asked for again, processed before new entries.
	Replays []Range `json:"replays,omitempty"`
	// Dead are dead-lettered ranges, newest last.
	Dead []Dead `json:"dead,omitempty"`
	// Recent are the latest attempts, newest last.
	Recent []Attempt `json:"recent,omitempty"`
	// Failures counts consecutive failed attempts: while above zero the
	// endpoint is taken to be down and only the oldest pending delivery
	// is retried, as a probe.
	Failures int `json:"failures"`
	// Delivered and Deadlettered count deliveries over the endpoint's life.
	Delivered    uint64 `json:"delivered"`
	Deadlettered uint64 `json:"dead_lettered"`
}

// Pending is a delivery that failed and waits for a retry.
type Pending struct {
	Seq       uint64    `json:"seq"`
	Attempts  int       `json:"attempts"`
	FirstAt   time.Time `json:"first_at"`
	NextAt    time.Time `json:"next_at"`
	LastError string    `json:"last_error,omitempty"`
}

// Range is an inclusive range of log sequence numbers.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Dead is a range of dead-lettered deliveries (entries in it that the
// endpoint does not select were never deliveries).
type Dead struct {
	Range
	Count     int       `json:"count"`
	At        time.Time `json:"at"`
	LastError string    `json:"last_error,omitempty"`
}

// Attempt is one delivery attempt, as listed at notifications/deliveries.
type Attempt struct {
	Seq     uint64        `json:"seq"`
	ID      string        `json:"webhook_id"`
	Type    string        `json:"type"`
	At      time.Time     `json:"at"`
	Attempt int           `json:"attempt"`
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency"`
	Outcome string        `json:"outcome"`
	Error   string        `json:"error,omitempty"`
}

// Attempt outcomes.
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeDead      = "dead_lettered"
)

// Follower holds the cursors of the log's other followers.
type Follower struct {
	// Responses is the last entry handed to the response policies.
	Responses uint64 `json:"responses"`
	// Bus is the last entry published to Vault's event bus.
	Bus uint64 `json:"bus"`
	// Started tells the cursors were set: a mount that starts following
	// its log begins at its head, not with its whole history.
	Started bool `json:"started"`
}
