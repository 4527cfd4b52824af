package eventlog

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Details of an entry appended late, by the recovery of an interrupted key
// change: DetailRecovered is "true", DetailOccurredAt the time of the
// change (RFC 3339, nanoseconds), while the entry's own time is when it
// was appended, so the log stays in time order.
const (
	DetailRecovered  = "recovered"
	DetailOccurredAt = "occurred_at"
)

// AppendMissing appends, marked as recovered, each of bodies (events
// encoded by Encode for one change, in order) that the log does not hold
// yet, as written or as recovered before. Only the entries where the
// change's own can stand are compared: from sequence number from on (the
// change's NextSeq), so a recovery right after a crash reads only what was
// appended since the change began, however busy the log was before; or,
// when from is 0 (a change noted by a version that did not record it),
// those whose event time is not before since. Calling it again with the
// same bodies appends nothing, so a recovery that is itself interrupted
// can simply run again.
func (l *Log) AppendMissing(ctx context.Context, s logical.Storage, bodies []string, from uint64, since time.Time) error {
	if len(bodies) == 0 {
		return nil
	}
	var logged map[string]bool
	var err error
	if from > 0 {
		logged, err = l.identitiesFrom(ctx, s, from)
	} else {
		logged, err = l.identitiesSince(ctx, s, since)
	}
	if err != nil {
		return err
	}
	for _, body := range bodies {
		if logged[identity([]byte(body))] {
			continue
		}
		late, err := recovered([]byte(body), l.clock.Now())
		if err != nil {
			return err
		}
		if err := l.AppendBody(ctx, s, late); err != nil {
			return err
		}
	}
	return nil
}

// recovered is the entry of an event appended late: stamped with the time
// it is appended, and saying it was recovered and when the change
// happened.
func recovered(body []byte, now time.Time) ([]byte, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, err
	}
	details := make(map[string]string, len(ev.Details)+2)
	for k, v := range ev.Details {
		details[k] = v
	}
	details[DetailRecovered] = "true"
	details[DetailOccurredAt] = ev.Time.UTC().Format(time.RFC3339Nano)
	ev.Details = details
	ev.Time = now
	return json.Marshal(ev)
}

// identity names the change an entry records, the same for the entry as
// first written and as appended late by a recovery, so a change is never
// logged twice.
func identity(body []byte) string {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return string(body)
	}
	if ev.Details[DetailRecovered] == "true" {
		if t, err := time.Parse(time.RFC3339Nano, ev.Details[DetailOccurredAt]); err == nil {
			ev.Time = t
		}
		details := make(map[string]string, len(ev.Details))
		for k, v := range ev.Details {
			if k != DetailRecovered && k != DetailOccurredAt {
				details[k] = v
			}
		}
		if len(details) == 0 {
			details = nil
		}
		ev.Details = details
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return string(body)
	}
	return string(out)
}

// identitiesFrom returns the identities of the entries from sequence
// number from to the head.
func (l *Log) identitiesFrom(ctx context.Context, s logical.Storage, from uint64) (map[string]bool, error) {
	head, err := l.Head(ctx, s)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for seq := from; seq <= head.Seq; seq++ {
		rec, err := l.Entry(ctx, s, seq)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			out[identity(rec.Event)] = true
		}
	}
	return out, nil
}

// identitiesSince returns the identities of the entries whose event time
// is not before since, reading back from the head and stopping at the
// first older one.
func (l *Log) identitiesSince(ctx context.Context, s logical.Storage, since time.Time) (map[string]bool, error) {
	head, err := l.Head(ctx, s)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for seq := head.Seq; seq >= 1; seq-- {
		rec, err := l.Entry(ctx, s, seq)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue
		}
		var ev struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(rec.Event, &ev) == nil && ev.Time.Before(since) {
			break
		}
		out[identity(rec.Event)] = true
	}
	return out, nil
}
