package outbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/notify"
)

// LogReader reads the lifecycle log.
type LogReader interface {
	Head(ctx context.Context, s logical.Storage) (eventlog.Head, error)
	Entry(ctx context.Context, s logical.Storage, seq uint64) (*eventlog.Entry, error)
}

// SendFunc posts one delivery (notify.Sender.Send); tests replace it.
type SendFunc func(ctx context.Context, url string, headers map[string]string, body []byte) notify.Result

// Deps is what the engine needs from the mount.
type Deps struct {
	Clock  clock.Clock
	Log    LogReader
	Logger hclog.Logger
	// OwnerOf returns the owner of a client ("" when unknown), for owner
	// filters.
	OwnerOf func(ctx context.Context, s logical.Storage, client string) (string, error)
	// DeadLettered raises the alert of deliveries given up on.
	DeadLettered func(ctx context.Context, s logical.Storage, endpoint string, d Dead) error
	// Respond hands a raised alert to the response policies; it is called
	// at least once per alert, so it must be idempotent.
	Respond func(ctx context.Context, s logical.Storage, alertID string) error
	// Publish sends a message to Vault's event bus, best effort.
	Publish func(ctx context.Context, m *Message) error
	// Send, when set, replaces the HTTP sender (tests).
	Send SendFunc
	// Rand returns numbers in [0,1) for the retry jitter.
	Rand func() float64
}

// Batch bounds the deliveries one endpoint makes in a step, and
// Concurrency how many of them are in flight at once.
const (
	Batch       = 64
	Concurrency = 8
)

// idleWait is how long the running engine sleeps when it has nothing to do
// and no append woke it: the resolution of retry times.
const idleWait = 2 * time.Second

// gatherWait is how long a woken engine lets further appends arrive before
// it steps. Appends come in runs (a busy mount makes many a second), and a
// step costs each endpoint a state read and write whatever it delivers:
// taking a run in one step instead of one step per entry keeps that cost,
// which competes with verify for the plugin's and Vault's CPU, from growing
// with the event rate. Deliveries wait at most this much longer.
const gatherWait = 100 * time.Millisecond

// Engine follows the lifecycle log and delivers what endpoints select.
type Engine struct {
	d Deps

	// wake is signalled (without blocking) when the log grows.
	wake chan struct{}

	// mu guards the caches, the per-endpoint locks and the sender.
	mu        sync.Mutex
	cfg       *Config
	endpoints []*Endpoint
	follower  *Follower
	epLocks   map[string]*sync.Mutex
	sender    *notify.Sender
	senderCfg Config

	// followMu serialises the followers' steps.
	followMu sync.Mutex

	stop context.CancelFunc
	done chan struct{}
}

// New returns an engine; it does nothing until Start or Step.
func New(d Deps) *Engine {
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	if d.Logger == nil {
		d.Logger = hclog.NewNullLogger()
	}
	return &Engine{d: d, wake: make(chan struct{}, 1), epLocks: map[string]*sync.Mutex{}}
}

// SetLogger replaces the logger (the mount's is known after New).
func (e *Engine) SetLogger(l hclog.Logger) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.d.Logger = l
}

// Wake makes a running engine step now; it never blocks.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start runs the engine in its own goroutine until Stop.
func (e *Engine) Start(s logical.Storage) {
	e.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.mu.Lock()
	e.stop, e.done = cancel, done
	e.mu.Unlock()
	go func() {
		defer close(done)
		for {
			more, err := e.Step(ctx, s)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				e.d.Logger.Warn("notification step failed; retrying", "error", err)
				more = false
			}
			wait := idleWait
			if more {
				wait = 0
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-e.wake:
				if !more && !e.gather(ctx) {
					t.Stop()
					return
				}
			case <-t.C:
			}
			t.Stop()
		}
	}()
}

// gather waits gatherWait for further appends; false when ctx ended.
func (e *Engine) gather(ctx context.Context) bool {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop ends a running engine and waits for its step to finish.
func (e *Engine) Stop() {
	e.mu.Lock()
	stop, done := e.stop, e.done
	e.stop, e.done = nil, nil
	e.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Running reports whether Start's goroutine runs (until Stop).
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stop != nil
}

// Invalidate drops what the engine caches of storage key k (written by
// the API, or by another node).
func (e *Engine) Invalidate(k string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case k == ConfigKey:
		e.cfg = nil
	case len(k) > len(EndpointPrefix) && k[:len(EndpointPrefix)] == EndpointPrefix:
		e.endpoints = nil
	case k == FollowerKey:
		e.follower = nil
	}
}

// endpointLock serialises one endpoint's state changes: the engine's step
// and the API's replay and delete.
func (e *Engine) endpointLock(name string) *sync.Mutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.epLocks[name]
	if l == nil {
		l = &sync.Mutex{}
		e.epLocks[name] = l
	}
	return l
}

// Step does one round: the followers, then every enabled endpoint in
// parallel. more reports that work is left that need not wait.
func (e *Engine) Step(ctx context.Context, s logical.Storage) (more bool, err error) {
	cfg, err := e.Config(ctx, s)
	if err != nil {
		return false, err
	}
	head, err := e.d.Log.Head(ctx, s)
	if err != nil {
		return false, err
	}
	eps, err := e.Endpoints(ctx, s)
	if err != nil {
		return false, err
	}
	msgs := newMessageCache(e.d.Log, s)
	followMore, ferr := e.follow(ctx, s, head.Seq, cfg, msgs)
	send := e.sendFunc(cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := []error{ferr}
	more = followMore
	for _, ep := range eps {
		if !ep.Enabled {
			continue
		}
		wg.Add(1)
		go func(ep *Endpoint) {
			defer wg.Done()
			m, err := e.stepEndpoint(ctx, s, ep, head.Seq, cfg, send, msgs)
			mu.Lock()
			defer mu.Unlock()
			more = more || m
			errs = append(errs, err)
		}(ep)
	}
	wg.Wait()
	return more, errors.Join(errs...)
}

// sendFunc is the sender for cfg, rebuilt when the outbound settings
// change (its connections are kept between steps otherwise).
func (e *Engine) sendFunc(cfg Config) SendFunc {
	if e.d.Send != nil {
		return e.d.Send
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender == nil || e.senderCfg != cfg {
		e.sender = notify.NewSender(notify.SenderOptions{
			Policy:           Policy(cfg),
			Timeout:          cfg.Timeout,
			MaxResponseBytes: MaxResponseBytes,
			UserAgent:        "vault-plugin-secrets-apikeys",
		})
		e.senderCfg = cfg
	}
	return e.sender.Send
}

// Policy is the outbound policy of cfg.
func Policy(cfg Config) notify.Policy {
	return notify.Policy{AllowHTTP: cfg.AllowHTTP, AllowLoopback: cfg.AllowLoopback, AllowPrivate: cfg.AllowPrivate}
}
