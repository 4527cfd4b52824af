package outbox

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/notify"
)

// job is one delivery of a step.
type job struct {
	msg     *Message
	pending *Pending // nil for a first attempt
	res     notify.Result
}

// stepEndpoint makes one batch of deliveries to ep and stores its state.
// It holds the endpoint's lock throughout, so a replay or a delete waits
// for at most one batch.
func (e *Engine) stepEndpoint(ctx context.Context, s logical.Storage, ep *Endpoint, head uint64, cfg Config, send SendFunc, msgs *messageCache) (bool, error) {
	l := e.endpointLock(ep.Name)
	l.Lock()
	defer l.Unlock()
	st, err := loadState(ctx, s, ep.Name)
	if err != nil {
		return false, err
	}
	if st == nil {
		st = &State{Cursor: head}
	}
	now := e.d.Clock.Now()
	var dead *Dead
	deadLetter := func(seq uint64, why string) {
		if dead == nil {
			dead = &Dead{Range: Range{From: seq, To: seq}, At: now}
		}
		dead.From, dead.To = min(dead.From, seq), max(dead.To, seq)
		dead.Count++
		dead.LastError = why
		st.Deadlettered++
	}
	changed := false
	var jobs []*job
	// down: the last attempts failed and deliveries wait for a retry. With
	// nothing waiting, new entries are tried as usual (the first of them
	// is the probe).
	down := st.Failures > 0 && len(st.Pending) > 0

	// Retries that are due, oldest first; while the endpoint is down only
	// the oldest is tried, as a probe.
	sort.Slice(st.Pending, func(i, j int) bool { return st.Pending[i].Seq < st.Pending[j].Seq })
	for i := range st.Pending {
		p := &st.Pending[i]
		if p.NextAt.After(now) || len(jobs) >= Batch || (down && i > 0) {
			continue
		}
		m, err := msgs.get(ctx, p.Seq)
		if err != nil {
			return false, err
		}
		if m == nil || !e.selects(ctx, s, ep, m) {
			p.Attempts = -1 // dropped below: gone, or no longer selected
			changed = true
			continue
		}
		jobs = append(jobs, &job{msg: m, pending: p})
	}

	if !down {
		// Replays, then what the log gained.
		for len(jobs) < Batch && len(st.Replays) > 0 {
			r := &st.Replays[0]
			m, err := msgs.get(ctx, r.From)
			if err != nil {
				return false, err
			}
			if m != nil && e.selects(ctx, s, ep, m) {
				jobs = append(jobs, &job{msg: m})
			}
			changed = true
			if r.From++; r.From > r.To {
				st.Replays = st.Replays[1:]
			}
		}
		for len(jobs) < Batch && st.Cursor < head && len(st.Pending)+len(jobs) < MaxPending {
			m, err := msgs.get(ctx, st.Cursor+1)
			if err != nil {
				return false, err
			}
			st.Cursor++
			changed = true
			if m != nil && e.selects(ctx, s, ep, m) {
				jobs = append(jobs, &job{msg: m})
			}
		}
	} else {
		// Down: the log is the backlog. Entries older than the retry
		// window are dead-lettered without an attempt.
		for n := 0; n < Batch && st.Cursor < head; n++ {
			m, err := msgs.get(ctx, st.Cursor+1)
			if err != nil {
				return false, err
			}
			if m != nil && now.Sub(m.Time) < cfg.RetryWindow {
				break
			}
			st.Cursor++
			changed = true
			if m != nil && e.selects(ctx, s, ep, m) {
				deadLetter(m.Seq, "endpoint down for the whole retry window")
			}
		}
	}

	e.deliver(ctx, ep, now, send, jobs)
	if err := ctx.Err(); err != nil {
		// The engine is stopping (step-down, seal, reload): these attempts
		// were cut short by us, not failed by the receiver. Nothing is
		// stored, so the next active node makes them again.
		return false, err
	}

	wasDown := st.Failures > 0
	// New failures are appended after the loop: the jobs hold pointers
	// into st.Pending, which an append could move.
	var added []Pending
	for _, j := range jobs {
		changed = true
		a := Attempt{Seq: j.msg.Seq, ID: j.msg.ID, Type: j.msg.Type, At: now, Attempt: 1, Status: j.res.Status, Latency: j.res.Latency, Error: j.res.Err}
		if j.pending != nil {
			a.Attempt = j.pending.Attempts + 1
		}
		switch {
		case j.res.OK():
			a.Outcome = OutcomeDelivered
			st.Delivered++
			st.Failures = 0
			if j.pending != nil {
				j.pending.Attempts = -1
			}
		default:
			st.Failures++
			p := j.pending
			if p == nil {
				p = &Pending{Seq: j.msg.Seq, FirstAt: now}
			}
			p.Attempts++
			p.LastError = j.res.Err
			p.NextAt = now.Add(notify.RetryDelay(p.Attempts, e.d.Rand))
			a.Outcome = OutcomeFailed
			if now.Sub(p.FirstAt) >= cfg.RetryWindow {
				a.Outcome = OutcomeDead
				deadLetter(p.Seq, j.res.Err)
				p.Attempts = -1
			} else if j.pending == nil {
				added = append(added, *p)
			}
		}
		st.Recent = append(st.Recent, a)
	}
	st.Pending = append(dropMarked(st.Pending), added...)
	if wasDown && st.Failures == 0 {
		// The probe went through: retry everything waiting now.
		for i := range st.Pending {
			st.Pending[i].NextAt = now
		}
	}
	if n := len(st.Recent); n > MaxRecent {
		st.Recent = append([]Attempt(nil), st.Recent[n-MaxRecent:]...)
	}
	if dead != nil {
		st.Dead = append(st.Dead, *dead)
		if n := len(st.Dead); n > MaxDead {
			st.Dead = append([]Dead(nil), st.Dead[n-MaxDead:]...)
		}
		// Before the state is stored: a crash in between repeats the
		// alert rather than losing it.
		if e.d.DeadLettered != nil {
			if err := e.d.DeadLettered(ctx, s, ep.Name, *dead); err != nil {
				return false, err
			}
		}
	}
	if !changed && dead == nil {
		return false, nil
	}
	if err := putJSON(ctx, s, StatePrefix+ep.Name, st); err != nil {
		return false, err
	}
	more := len(jobs) == Batch || (st.Failures == 0 && (len(st.Replays) > 0 || (st.Cursor < head && len(st.Pending) < MaxPending)))
	if wasDown && st.Failures == 0 && len(st.Pending) > 0 {
		more = true
	}
	return more, nil
}

// deliver sends the jobs, at most Concurrency at a time.
func (e *Engine) deliver(ctx context.Context, ep *Endpoint, now time.Time, send SendFunc, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	var keys [][]byte
	for _, sec := range ep.LiveSecrets(now) {
		if k, err := notify.DecodeSecret(sec.Value); err == nil {
			keys = append(keys, k)
		}
	}
	sem := make(chan struct{}, Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(j *job) {
			defer wg.Done()
			defer func() { <-sem }()
			j.res = send(ctx, ep.URL, notify.Headers(keys, j.msg.ID, e.d.Clock.Now(), j.msg.Body), j.msg.Body)
		}(j)
	}
	wg.Wait()
}

// dropMarked removes the pending deliveries marked done (Attempts < 0).
func dropMarked(ps []Pending) []Pending {
	out := ps[:0]
	for _, p := range ps {
		if p.Attempts >= 0 {
			out = append(out, p)
		}
	}
	return out
}

// selects reports whether ep receives m.
func (e *Engine) selects(ctx context.Context, s logical.Storage, ep *Endpoint, m *Message) bool {
	if !notify.MatchType(ep.EventTypes, m.Type) {
		return false
	}
	if m.Endpoint != "" && m.Endpoint == ep.Name {
		return false // an alert about this endpoint's own deliveries
	}
	if ep.MinSeverity != "" && !notify.SeverityAtLeast(ep.MinSeverity, m.Severity) {
		return false
	}
	if len(ep.Clients) > 0 && !slices.Contains(ep.Clients, m.Client) {
		return false
	}
	if len(ep.Owners) > 0 {
		if m.Client == "" || e.d.OwnerOf == nil {
			return false
		}
		owner, err := e.d.OwnerOf(ctx, s, m.Client)
		if err != nil || !slices.Contains(ep.Owners, owner) {
			return false
		}
	}
	return true
}
