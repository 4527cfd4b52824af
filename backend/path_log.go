package backend

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
)

const pathLogHelpSyn = `Read the lifecycle log.`
const pathLogHelpDesc = `
The append-only lifecycle log records every issuance, rotation, promotion,
rollback, retirement, revocation, client and role change, approval, lock,
leak and alert, with its time, actor (a Vault entity, a token without an
entity, or "system" for background work), the Vault request id and the
non-secret identifiers. Each entry is chained by hash to the one before.

The newest entries come first, at most "limit" at a time; "before=<seq>"
pages back to older ones (each page's "next_before" is the value for the next
page). To follow the log forward, from an export or a previous read, pass
"after=<seq>" (0: from the start): entries then come oldest first, and
"next_after" continues the listing; "order=oldest" does the same from the
start. Times are RFC 3339 UTC to the second and durations in details are
seconds, as in every other answer.

Filters: key_id, client, type (exact, or a prefix such as "key.*"), actor
(an entity id, a display name, or "system"), since and until (RFC 3339). A
page reads at most 10 x limit entries: with a filter that matches few, a
page may hold fewer entries, or none, and still a next_before/next_after;
only a page without one is the end.
`

// logScanFactor bounds the entries one page reads: limit times this.
const logScanFactor = 10
const pathLogVerifyHelpSyn = `Verify the lifecycle log's hash chain.`
const pathLogVerifyHelpDesc = `
Recomputes entries' hashes from storage and reports whether the chain is
intact ("valid"), how many entries this request checked ("entries") and the
hash of the last one ("head"). When an entry was altered, removed or
reordered, "broken_at" names the first entry that fails and "reason" says how.

A full verification streams through the log in pages of at most "limit"
entries (default 10000, at most 100000): it starts after entry "from" (0,
the default: the first entry kept, after any archived by log/archive) and, while "complete" is false, "next_from" and
"next_hash" are the from and from_hash of the next page. from_hash, when
given, must be the hash of entry from (the previous page's next_hash): a page
then also proves it continues the one before. The last page compares the
chain with the stored head record, which catches removed newest entries.

"incremental=true" checks only what was appended since the last verified
point instead: the entries the log's Merkle tree (log/checkpoint) has not
reached yet, at most limit of them, which then join the tree. Its cost is the
new entries, whatever the log's size.
`

const maxLogPage = 1000

func (b *apikeysBackend) pathLog() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "log/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "read",
				OperationSuffix: "log",
			},
			Fields: map[string]*framework.FieldSchema{
				"after":  {Type: framework.TypeInt, Description: "Return entries with a sequence number greater than this, oldest first (0: from the start). Not set: the newest entries first."},
				"before": {Type: framework.TypeInt, Description: "Return entries with a sequence number smaller than this, newest first (the previous page's next_before)."},
				"limit":  {Type: framework.TypeInt, Description: "Most entries to return, 1-1000 (default 100).", Default: 100},
				"order":  {Type: framework.TypeString, Description: "newest (default: newest first) or oldest (oldest first, from the start unless after is given)."},
				"key_id": {Type: framework.TypeString, Description: "Only entries of this key id."},
				"client": {Type: framework.TypeString, Description: "Only entries of this client."},
				"type":   {Type: framework.TypeString, Description: "Only entries of this event type, or of every type under a prefix ending in .* (key.*)."},
				"actor":  {Type: framework.TypeString, Description: "Only entries by this actor: an entity id, a display name, or system."},
				"since":  {Type: framework.TypeString, Description: "Only entries at or after this time (RFC 3339)."},
				"until":  {Type: framework.TypeString, Description: "Only entries before this time (RFC 3339)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLogRead, Responses: okResponse(logReadResponseFields)},
			},
			HelpSynopsis:    pathLogHelpSyn,
			HelpDescription: pathLogHelpDesc,
		},
		{
			Pattern: "log/verify$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "verify",
				OperationSuffix: "log",
			},
			Fields: map[string]*framework.FieldSchema{
				"from":        {Type: framework.TypeInt, Description: "Verify the entries after this sequence number (0, the default: from the first entry); the previous page's next_from."},
				"from_hash":   {Type: framework.TypeString, Description: "The hash of entry from (the previous page's next_hash), to prove the page continues it."},
				"limit":       {Type: framework.TypeInt, Description: "Most entries to check in this request, 1-100000 (default 10000).", Default: defaultVerifyPage},
				"incremental": {Type: framework.TypeBool, Description: "Check only the entries appended since the last verified point (the log tree's size)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathLogVerify, Responses: okResponse(logVerifyResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLogVerify, Responses: okResponse(logVerifyResponseFields)},
			},
			HelpSynopsis:    pathLogVerifyHelpSyn,
			HelpDescription: pathLogVerifyHelpDesc,
		},
	}
}

func (b *apikeysBackend) pathLogRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	limit := d.Get("limit").(int)
	if limit < 1 || limit > maxLogPage {
		return nil, userErrorf("limit must be between 1 and %d (got %d)", maxLogPage, limit)
	}
	rawAfter, forward := d.GetOk("after")
	rawBefore, back := d.GetOk("before")
	if forward && back {
		return nil, userErrorf("after and before cannot be combined: after lists oldest first, before pages back newest first")
	}
	switch order := d.Get("order").(string); order {
	case "":
	case "newest":
		if forward {
			return nil, userErrorf("order=newest cannot be combined with after, which lists oldest first")
		}
	case "oldest":
		if back {
			return nil, userErrorf("order=oldest cannot be combined with before, which pages back newest first")
		}
		if !forward {
			forward, rawAfter = true, 0
		}
	default:
		return nil, userErrorf("order must be newest or oldest (got %q)", order)
	}
	filter, err := logFilter(d)
	if err != nil {
		return nil, err
	}
	head, err := b.log.Head(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	entries := []map[string]interface{}{}
	collect := func(rec *eventlog.Entry) bool {
		entries = append(entries, renderLogEntry(rec))
		return len(entries) < limit
	}
	data := map[string]interface{}{
		"head_seq":  head.Seq,
		"head_hash": head.Hash,
	}
	budget := limit * logScanFactor
	if forward {
		after := rawAfter.(int)
		if after < 0 {
			return nil, userErrorf("after must be 0 or a sequence number (got %d)", after)
		}
		last, done, err := b.log.Scan(ctx, req.Storage, filter, uint64(after)+1, head.Seq, true, budget, collect)
		if err != nil {
			return nil, err
		}
		if !done && last < head.Seq {
			data["next_after"] = max(last, uint64(after))
		}
	} else {
		from := head.Seq
		if back {
			before := rawBefore.(int)
			if before < 1 {
				return nil, userErrorf("before must be a sequence number, 1 or more (got %d)", before)
			}
			from = min(from, uint64(before)-1)
		}
		last, done, err := b.log.Scan(ctx, req.Storage, filter, from, head.Seq, false, budget, collect)
		if err != nil {
			return nil, err
		}
		if !done && last > 1 {
			data["next_before"] = last
		}
	}
	data["entries"] = entries
	return &logical.Response{Data: data}, nil
}

// logFilter reads the log's filter fields.
func logFilter(d *framework.FieldData) (eventlog.Filter, error) {
	str := func(name string) string { return strings.TrimSpace(d.Get(name).(string)) }
	f := eventlog.Filter{KeyID: str("key_id"), Client: str("client"), Type: str("type"), Actor: str("actor")}
	if strings.Contains(strings.TrimSuffix(f.Type, "*"), "*") {
		return f, userErrorf("type must be an event type or a prefix ending in * such as key.* (got %q)", f.Type)
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := str(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, userErrorf("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z (got %q)", name, v)
			}
			*dst = t
		}
	}
	return f, nil
}

// renderLogEntry shows a stored entry as the API shows everything else
// (render.go), leaving unknown fields as they were written.
func renderLogEntry(rec *eventlog.Entry) map[string]interface{} {
	var ev map[string]interface{}
	if err := json.Unmarshal(rec.Event, &ev); err != nil {
		ev = map[string]interface{}{"unreadable": true}
	}
	if s, ok := ev["time"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ev["time"] = renderTime(t)
		}
	}
	if raw, ok := ev["details"].(map[string]interface{}); ok {
		details := make(map[string]string, len(raw))
		for k, v := range raw {
			if s, ok := v.(string); ok {
				details[k] = s
			}
		}
		rendered := renderDetails(details)
		for k, v := range raw {
			if _, ok := v.(string); !ok {
				rendered[k] = v
			}
		}
		ev["details"] = rendered
	}
	ev["seq"] = rec.Seq
	ev["hash"] = rec.Hash
	ev["prev"] = rec.Prev
	return ev
}

// Pages of log/verify.
const (
	defaultVerifyPage = 10000
	maxVerifyPage     = 100000
)

func (b *apikeysBackend) pathLogVerify(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	limit := d.Get("limit").(int)
	if limit < 1 || limit > maxVerifyPage {
		return nil, userErrorf("limit must be between 1 and %d (got %d)", maxVerifyPage, limit)
	}
	rawFrom, fromSet := d.GetOk("from")
	fromHash := strings.TrimSpace(d.Get("from_hash").(string))
	if d.Get("incremental").(bool) {
		if fromSet || fromHash != "" {
			return nil, userErrorf("incremental starts at the last verified point: it cannot be combined with from or from_hash")
		}
		return b.verifyIncremental(ctx, req.Storage, limit)
	}
	from, prev := uint64(0), hashchain.Genesis
	if fromSet {
		v := rawFrom.(int)
		if v < 0 {
			return nil, userErrorf("from must be 0 or a sequence number (got %d)", v)
		}
		from = uint64(v)
	}
	base, err := b.log.Base(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if from <= base.Seq && base.Seq > 0 {
		// Archived entries are checked offline against the archive;
		// what is kept is checked from the last archived entry's hash.
		from, prev = base.Seq, base.Hash
	} else if from > 0 {
		rec, err := b.log.Entry(ctx, req.Storage, from)
		if err != nil && !errors.Is(err, eventlog.ErrUnreadable) {
			return nil, err
		}
		if rec == nil {
			return nil, userErrorf("entry %d (from) is not in the log or is not readable", from)
		}
		prev = rec.Hash
	}
	if fromHash != "" && subtle.ConstantTimeCompare([]byte(fromHash), []byte(prev)) != 1 {
		return &logical.Response{Data: map[string]interface{}{
			"valid": false, "entries": 0, "from": from, "to": from, "complete": false, "head": prev,
			"broken_at": from, "reason": fmt.Sprintf("entry %d no longer has the hash the previous page ended with (from_hash)", from),
		}}, nil
	}
	res, head, err := b.log.VerifyPage(ctx, req.Storage, from, prev, limit)
	if err != nil {
		return nil, err
	}
	to := from + res.Entries
	data := map[string]interface{}{
		"valid":    res.Valid,
		"entries":  res.Entries,
		"head":     res.Head,
		"head_seq": head.Seq,
		"from":     from,
		"to":       to,
		"complete": res.Valid && to == head.Seq,
	}
	if base.Seq > 0 {
		data["archived_through"] = base.Seq
	}
	if !res.Valid {
		data["broken_at"] = res.BrokenAt
		data["reason"] = res.Reason
	} else if to < head.Seq {
		data["next_from"] = to
		data["next_hash"] = res.Head
	}
	return &logical.Response{Data: data}, nil
}

// verifyIncremental checks the entries past the log tree's verified size
// and adds them to it.
func (b *apikeysBackend) verifyIncremental(ctx context.Context, s logical.Storage, limit int) (*logical.Response, error) {
	before, err := b.tree.State(ctx, s)
	if err != nil {
		return nil, err
	}
	p, err := b.tree.Grow(ctx, s, limit)
	if err != nil {
		return nil, err
	}
	from := min(before.Size, p.Size)
	data := map[string]interface{}{
		"valid":    p.BrokenAt == 0,
		"entries":  p.Added,
		"head":     p.LastHash,
		"head_seq": p.HeadSeq,
		"from":     from,
		"to":       p.Size,
		"complete": p.BrokenAt == 0 && p.Size == p.HeadSeq,
	}
	if p.BrokenAt != 0 {
		data["broken_at"] = p.BrokenAt
		data["reason"] = p.Reason
	} else if p.Size < p.HeadSeq {
		data["next_from"] = p.Size
		data["next_hash"] = p.LastHash
	}
	return &logical.Response{Data: data}, nil
}

var logReadResponseFields = map[string]*framework.FieldSchema{
	"entries":     field(framework.TypeSlice, "Log entries: seq, time, type, actor, request_id, client, key, key_id, role, version, details, prev, hash."),
	"head_seq":    field(framework.TypeInt, "Sequence number of the newest entry."),
	"head_hash":   field(framework.TypeString, "Hash of the newest entry."),
	"next_after":  field(framework.TypeInt, "Value of after for the next page forward."),
	"next_before": field(framework.TypeInt, "Value of before for the next page back."),
}

var logVerifyResponseFields = map[string]*framework.FieldSchema{
	"valid":            field(framework.TypeBool, "Whether the hash chain is intact as far as this request checked."),
	"entries":          field(framework.TypeInt, "Number of entries checked by this request."),
	"head":             field(framework.TypeString, "Hash of the last entry checked (the newest entry when complete)."),
	"head_seq":         field(framework.TypeInt, "Sequence number of the newest entry when the request started."),
	"from":             field(framework.TypeInt, "Entries after this sequence number were checked."),
	"to":               field(framework.TypeInt, "Sequence number of the last entry checked."),
	"complete":         field(framework.TypeBool, "Whether the check reached the newest entry and matched the head record."),
	"next_from":        field(framework.TypeInt, "from for the next page, while not complete."),
	"next_hash":        field(framework.TypeString, "from_hash for the next page, while not complete."),
	"archived_through": field(framework.TypeInt, "Entries up to this one were archived (log/archive): verification of what is kept starts after it."),
	"broken_at":        field(framework.TypeInt, "Sequence number where the chain breaks, if it does."),
	"reason":           field(framework.TypeString, "Why the chain is broken, if it is."),
}
