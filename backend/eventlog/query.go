package eventlog

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Filter selects log entries. Empty fields match everything. Type matches
// an event type exactly, or every type under a prefix when it ends in
// ".*" ("key.*"). Actor matches an entity id, a display name, or "system".
// Since and Until bound the entry's time (inclusive, exclusive).
type Filter struct {
	KeyID, Client, Type, Actor string
	Since, Until               time.Time
}

// queried is the part of a stored event a filter reads.
type queried struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Client string    `json:"client"`
	KeyID  string    `json:"key_id"`
	Actor  struct {
		Type        string `json:"type"`
		EntityID    string `json:"entity_id"`
		DisplayName string `json:"display_name"`
	} `json:"actor"`
}

// Match reports whether the stored event body passes f. A body that does
// not decode matches only the empty filter, so an unreadable entry is
// still listed when nothing is filtered.
func (f Filter) Match(body json.RawMessage) bool {
	if f == (Filter{}) {
		return true
	}
	var ev queried
	if err := json.Unmarshal(body, &ev); err != nil {
		return false
	}
	switch {
	case f.KeyID != "" && ev.KeyID != f.KeyID,
		f.Client != "" && ev.Client != f.Client,
		f.Type != "" && !typeMatches(f.Type, ev.Type),
		f.Actor != "" && !actorMatches(f.Actor, ev.Actor.Type, ev.Actor.EntityID, ev.Actor.DisplayName),
		!f.Since.IsZero() && ev.Time.Before(f.Since),
		!f.Until.IsZero() && !ev.Time.Before(f.Until):
		return false
	}
	return true
}

func typeMatches(want, got string) bool {
	if prefix, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(got, prefix)
	}
	return got == want
}

func actorMatches(want, typ, entityID, name string) bool {
	if want == "system" {
		return typ == "system"
	}
	return want == entityID || want == name
}

// Scan reads entries from seq from (inclusive), forward to head or back to
// the first entry kept (archival removes older ones), reading at most budget entries, and calls fn for each entry f matches
// until fn returns false. It returns the last sequence number read (0 when
// none was) and whether the scan reached the end of its direction: when
// not, the caller continues after (forward) or before (back) that number.
func (l *Log) Scan(ctx context.Context, s logical.Storage, f Filter, from, head uint64, forward bool, budget int, fn func(*Entry) bool) (last uint64, done bool, err error) {
	// Archived entries are gone: a scan covers what is kept.
	base, err := l.Base(ctx, s)
	if err != nil {
		return 0, false, err
	}
	first := base.Seq + 1
	seq := from
	if forward && seq < first {
		seq = first
	}
	for read := 0; read < max(budget, 1); read++ {
		if (forward && seq > head) || (!forward && seq < first) {
			return last, true, nil
		}
		rec, err := l.Entry(ctx, s, seq)
		if err != nil {
			return last, false, err
		}
		last = seq
		if forward {
			seq++
		} else {
			seq--
		}
		if rec != nil && f.Match(rec.Event) && !fn(rec) {
			break
		}
	}
	done = (forward && seq > head) || (!forward && seq < first)
	return last, done, nil
}
