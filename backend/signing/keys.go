package signing

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Appender takes the signing_key.* events (the mount's *eventlog.Log).
type Appender interface {
	Append(ctx context.Context, s logical.Storage, ev eventlog.Event) error
}

// Origin is whom a change is attributed to in its log entries: the actor
// and Vault request id of an operator's request.
type Origin struct {
	Actor     record.Actor
	RequestID string
}

// event starts a log entry of type typ attributed to o.
func (o Origin) event(typ string) eventlog.Event {
	return eventlog.Event{Type: typ, Actor: o.Actor, RequestID: o.RequestID}
}

// Deps is what the signing keys need from their mount.
type Deps struct {
	Clock clock.Clock
	Log   Appender
	// Config returns the mount's configuration (rotation period and
	// token_ttl) for the work no caller hands one to: Tick and Ensure.
	Config func(ctx context.Context, s logical.Storage) (*record.Config, error)
	// System is the actor of background work: the first key, scheduled
	// rotations and the publication of the next key.
	System record.Actor
	// MaxEntryBytes bounds the stored set, as it bounds every record of
	// the mount.
	MaxEntryBytes int
}

// Keys is the token signing key set of one mount. Its zero value is not
// usable: build it with New.
type Keys struct {
	clock         clock.Clock
	log           Appender
	config        func(ctx context.Context, s logical.Storage) (*record.Config, error)
	system        Origin
	maxEntryBytes int

	// mu serialises changes of the set (read, change, store, log); reads
	// take no lock (doc.go).
	mu sync.Mutex
}

// New returns the signing keys of a mount.
func New(d Deps) *Keys {
	return &Keys{
		clock:         d.Clock,
		log:           d.Log,
		config:        d.Config,
		system:        Origin{Actor: d.System},
		maxEntryBytes: d.MaxEntryBytes,
	}
}

// Current returns the key set with a current key that may sign now,
// rotating first (as the system) when the current key is missing or past
// its period. cfg is the configuration the caller signs under, so the
// token's lifetime and the rotation agree.
func (k *Keys) Current(ctx context.Context, s logical.Storage, cfg *record.Config) (*jwtsign.KeySet, error) {
	set, err := k.Read(ctx, s)
	if err != nil {
		return nil, err
	}
	if !set.Due(k.clock.Now(), cfg.SigningKeyRotationPeriod) {
		return set, nil
	}
	set, _, _, err = k.rotate(ctx, s, cfg, k.system, false, false)
	return set, err
}

// NoteTokenTTL records on the current key the token_ttl it has signed with
// before a config change lowers it (see jwtsign.KeyPair.MaxTokenTTL), so
// the key stays published long enough once rotated out.
func (k *Keys) NoteTokenTTL(ctx context.Context, s logical.Storage, ttl time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	set, err := k.Read(ctx, s)
	if err != nil || set.Current == nil || set.Current.MaxTokenTTL >= ttl {
		return err
	}
	set.Current.MaxTokenTTL = ttl
	return k.put(ctx, s, set)
}

// Ensure creates the first signing key of a mount, so jwks has a key to
// publish before the first token exchange.
func (k *Keys) Ensure(ctx context.Context, s logical.Storage) error {
	set, err := k.Read(ctx, s)
	if err != nil || set.Current != nil {
		return err
	}
	cfg, err := k.config(ctx, s)
	if err != nil {
		return err
	}
	_, _, _, err = k.rotate(ctx, s, cfg, k.system, false, false)
	return err
}
