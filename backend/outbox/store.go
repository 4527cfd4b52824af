package outbox

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

func getJSON(ctx context.Context, s logical.Storage, key string, out interface{}) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := entry.DecodeJSON(out); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v interface{}) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// Config returns the mount's notification settings (cached).
func (e *Engine) Config(ctx context.Context, s logical.Storage) (Config, error) {
	e.mu.Lock()
	if e.cfg != nil {
		c := *e.cfg
		e.mu.Unlock()
		return c, nil
	}
	e.mu.Unlock()
	c := DefaultConfig()
	if _, err := getJSON(ctx, s, ConfigKey, &c); err != nil {
		return c, err
	}
	e.mu.Lock()
	e.cfg = &c
	e.mu.Unlock()
	return c, nil
}

// PutConfig stores the settings.
func (e *Engine) PutConfig(ctx context.Context, s logical.Storage, c Config) error {
	err := putJSON(ctx, s, ConfigKey, c)
	e.Invalidate(ConfigKey)
	return err
}

// Endpoints returns every endpoint, by name (cached).
func (e *Engine) Endpoints(ctx context.Context, s logical.Storage) ([]*Endpoint, error) {
	e.mu.Lock()
	if e.endpoints != nil {
		eps := e.endpoints
		e.mu.Unlock()
		return eps, nil
	}
	e.mu.Unlock()
	names, err := s.List(ctx, EndpointPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing endpoints: %w", err)
	}
	sort.Strings(names)
	eps := make([]*Endpoint, 0, len(names))
	for _, n := range names {
		ep, err := e.Endpoint(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if ep != nil {
			eps = append(eps, ep)
		}
	}
	e.mu.Lock()
	e.endpoints = eps
	e.mu.Unlock()
	return eps, nil
}

// Endpoint reads one endpoint; nil when there is none.
func (e *Engine) Endpoint(ctx context.Context, s logical.Storage, name string) (*Endpoint, error) {
	var ep Endpoint
	ok, err := getJSON(ctx, s, EndpointPrefix+name, &ep)
	if err != nil || !ok {
		return nil, err
	}
	return &ep, nil
}

// PutEndpoint stores ep. A new endpoint starts at the log's head: it
// receives what happens from now on (older events can be replayed).
func (e *Engine) PutEndpoint(ctx context.Context, s logical.Storage, ep *Endpoint, created bool) error {
	if created {
		head, err := e.d.Log.Head(ctx, s)
		if err != nil {
			return err
		}
		l := e.endpointLock(ep.Name)
		l.Lock()
		err = putJSON(ctx, s, StatePrefix+ep.Name, &State{Cursor: head.Seq})
		l.Unlock()
		if err != nil {
			return err
		}
	}
	err := putJSON(ctx, s, EndpointPrefix+ep.Name, ep)
	e.Invalidate(EndpointPrefix + ep.Name)
	e.Wake()
	return err
}

// DeleteEndpoint removes an endpoint and its delivery state.
func (e *Engine) DeleteEndpoint(ctx context.Context, s logical.Storage, name string) error {
	l := e.endpointLock(name)
	l.Lock()
	defer l.Unlock()
	if err := s.Delete(ctx, EndpointPrefix+name); err != nil {
		return err
	}
	e.Invalidate(EndpointPrefix + name)
	return s.Delete(ctx, StatePrefix+name)
}

// State returns an endpoint's delivery state (nil: none).
func (e *Engine) State(ctx context.Context, s logical.Storage, name string) (*State, error) {
	l := e.endpointLock(name)
	l.Lock()
	defer l.Unlock()
	return loadState(ctx, s, name)
}

func loadState(ctx context.Context, s logical.Storage, name string) (*State, error) {
	var st State
	ok, err := getJSON(ctx, s, StatePrefix+name, &st)
	if err != nil || !ok {
		return nil, err
	}
	return &st, nil
}

// ReplayDead moves an endpoint's dead-lettered ranges back into delivery;
// it returns how many deliveries they held.
func (e *Engine) ReplayDead(ctx context.Context, s logical.Storage, name string) (int, error) {
	return e.replay(ctx, s, name, func(st *State, _ uint64) (int, error) {
		n := 0
		for _, d := range st.Dead {
			st.Replays = append(st.Replays, d.Range)
			n += d.Count
		}
		st.Dead = nil
		return n, nil
	})
}

// Replay delivers the entries in r again (those the endpoint selects).
func (e *Engine) Replay(ctx context.Context, s logical.Storage, name string, r Range) error {
	_, err := e.replay(ctx, s, name, func(st *State, head uint64) (int, error) {
		if r.From < 1 || r.To < r.From {
			return 0, &RangeError{"from_seq must be at least 1 and to_seq not below it"}
		}
		if r.To > head {
			return 0, &RangeError{fmt.Sprintf("the log has %d entries", head)}
		}
		st.Replays = append(st.Replays, r)
		return 0, nil
	})
	return err
}

// RangeError is a replay range the log cannot serve: the caller's mistake.
type RangeError struct{ Msg string }

func (r *RangeError) Error() string { return r.Msg }

func (e *Engine) replay(ctx context.Context, s logical.Storage, name string, change func(*State, uint64) (int, error)) (int, error) {
	head, err := e.d.Log.Head(ctx, s)
	if err != nil {
		return 0, err
	}
	l := e.endpointLock(name)
	l.Lock()
	defer l.Unlock()
	st, err := loadState(ctx, s, name)
	if err != nil {
		return 0, err
	}
	if st == nil {
		st = &State{Cursor: head.Seq}
	}
	n, err := change(st, head.Seq)
	if err != nil {
		return 0, err
	}
	st.Replays = mergeRanges(st.Replays, MaxReplays)
	if err := putJSON(ctx, s, StatePrefix+name, st); err != nil {
		return 0, err
	}
	e.Wake()
	return n, nil
}

// mergeRanges keeps at most limit ranges: beyond that the newest are folded
// into the last kept one (a wider replay only re-sends what receivers
// de-duplicate).
func mergeRanges(rs []Range, limit int) []Range {
	if len(rs) <= limit {
		return rs
	}
	last := rs[limit-1]
	for _, r := range rs[limit:] {
		last.From = min(last.From, r.From)
		last.To = max(last.To, r.To)
	}
	rs[limit-1] = last
	return rs[:limit]
}

// messageCache reads each log entry at most once per step, whatever the
// number of endpoints selecting it.
type messageCache struct {
	log LogReader
	s   logical.Storage
	mu  sync.Mutex
	m   map[uint64]*Message
}

func newMessageCache(log LogReader, s logical.Storage) *messageCache {
	return &messageCache{log: log, s: s, m: map[uint64]*Message{}}
}

// get returns the message of entry seq; nil if the entry is missing.
func (c *messageCache) get(ctx context.Context, seq uint64) (*Message, error) {
	c.mu.Lock()
	m, ok := c.m[seq]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	e, err := c.log.Entry(ctx, c.s, seq)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if m, err = NewMessage(e); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.m[seq] = m
	c.mu.Unlock()
	return m, nil
}
