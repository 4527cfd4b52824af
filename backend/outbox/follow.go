package outbox

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"
)

// follow hands new alerts to the response policies and new events to
// Vault's event bus. The response cursor moves only past an alert that was
// handled, so a failure (or a crash) hands it over again; the bus is best
// effort and its cursor always moves on.
func (e *Engine) follow(ctx context.Context, s logical.Storage, head uint64, cfg Config, msgs *messageCache) (bool, error) {
	e.followMu.Lock()
	defer e.followMu.Unlock()
	f, err := e.loadFollower(ctx, s)
	if err != nil {
		return false, err
	}
	before := f
	if !f.Started {
		// The mount's first step: what happened before has been acted on
		// (or was before response policies existed).
		f = Follower{Responses: head, Bus: head, Started: true}
	}
	var stepErr error
	for n := 0; f.Responses < head && n < Batch; n++ {
		seq := f.Responses + 1
		m, err := msgs.get(ctx, seq)
		if err != nil {
			stepErr = err
			break
		}
		if m != nil && m.AlertID != "" && e.d.Respond != nil {
			if err := e.d.Respond(ctx, s, m.AlertID); err != nil {
				stepErr = err
				break
			}
		}
		f.Responses = seq
	}
	if !cfg.VaultEvents || e.d.Publish == nil {
		f.Bus = head
	}
	for n := 0; f.Bus < head && n < Batch; n++ {
		seq := f.Bus + 1
		m, err := msgs.get(ctx, seq)
		if err != nil {
			break
		}
		if m != nil {
			if err := e.d.Publish(ctx, m); err != nil {
				e.d.Logger.Debug("could not publish an event to Vault's event bus", "seq", seq, "error", err)
			}
		}
		f.Bus = seq
	}
	if f != before {
		if err := putJSON(ctx, s, FollowerKey, &f); err != nil {
			return false, err
		}
		e.mu.Lock()
		e.follower = &f
		e.mu.Unlock()
	}
	return stepErr == nil && (f.Responses < head || f.Bus < head), stepErr
}

func (e *Engine) loadFollower(ctx context.Context, s logical.Storage) (Follower, error) {
	e.mu.Lock()
	if e.follower != nil {
		f := *e.follower
		e.mu.Unlock()
		return f, nil
	}
	e.mu.Unlock()
	var f Follower
	if _, err := getJSON(ctx, s, FollowerKey, &f); err != nil {
		return f, err
	}
	e.mu.Lock()
	e.follower = &f
	e.mu.Unlock()
	return f, nil
}
