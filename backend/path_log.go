package backend

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
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
"next_after" continues the listing. Times are RFC 3339 UTC to the second and
durations in details are seconds, as in every other answer.
`
const pathLogVerifyHelpSyn = `Verify the lifecycle log's hash chain.`
const pathLogVerifyHelpDesc = `
Recomputes every entry's hash from storage and reports whether the chain is
intact ("valid"), how many entries it covers, and the head hash. When an
entry was altered, removed or reordered, "broken_at" names the first entry
that fails and "reason" says how.
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
	head, err := b.log.Head(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	entries := []map[string]interface{}{}
	add := func(seq uint64) error {
		rec, err := b.log.Entry(ctx, req.Storage, seq)
		if err != nil || rec == nil {
			return err
		}
		entries = append(entries, renderLogEntry(rec))
		return nil
	}
	data := map[string]interface{}{
		"head_seq":  head.Seq,
		"head_hash": head.Hash,
	}
	if forward {
		after := rawAfter.(int)
		if after < 0 {
			return nil, userErrorf("after must be 0 or a sequence number (got %d)", after)
		}
		last := uint64(after)
		for seq := last + 1; seq <= head.Seq && len(entries) < limit; seq++ {
			if err := add(seq); err != nil {
				return nil, err
			}
			last = seq
		}
		if last < head.Seq {
			data["next_after"] = last
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
		seq := from
		for ; seq >= 1 && len(entries) < limit; seq-- {
			if err := add(seq); err != nil {
				return nil, err
			}
		}
		if seq >= 1 {
			data["next_before"] = seq + 1
		}
	}
	data["entries"] = entries
	return &logical.Response{Data: data}, nil
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

func (b *apikeysBackend) pathLogVerify(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	res, err := b.log.Verify(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"valid":   res.Valid,
		"entries": res.Entries,
		"head":    res.Head,
	}
	if !res.Valid {
		data["broken_at"] = res.BrokenAt
		data["reason"] = res.Reason
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
	"valid":     field(framework.TypeBool, "Whether the hash chain is intact."),
	"entries":   field(framework.TypeInt, "Number of entries checked."),
	"head":      field(framework.TypeString, "Hash of the newest entry."),
	"broken_at": field(framework.TypeInt, "Sequence number where the chain breaks, if it does."),
	"reason":    field(framework.TypeString, "Why the chain is broken, if it is."),
}
