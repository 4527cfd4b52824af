package backend

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathLogHelpSyn = `Read the lifecycle log.`
const pathLogHelpDesc = `
The append-only lifecycle log records every issuance, rotation, promotion,
rollback, retirement, revocation, client and role change, approval, lock,
leak and alert, with its time, actor (a Vault entity, a token without an
entity, or "system" for background work), the Vault request id and the
non-secret identifiers. Each entry is chained by hash to the one before.

Entries are returned in order, starting after sequence number "after", at
most "limit" at a time; "next_after" continues the listing.
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
				"after": {Type: framework.TypeInt, Description: "Return entries with a sequence number greater than this (default 0: from the start)."},
				"limit": {Type: framework.TypeInt, Description: "Most entries to return, 1-1000 (default 100).", Default: 100},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLogRead},
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
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathLogVerify},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLogVerify},
			},
			HelpSynopsis:    pathLogVerifyHelpSyn,
			HelpDescription: pathLogVerifyHelpDesc,
		},
	}
}

func (b *apikeysBackend) pathLogRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	after, limit := d.Get("after").(int), d.Get("limit").(int)
	if after < 0 {
		return logical.ErrorResponse("after must be 0 or a sequence number (got %d)", after), nil
	}
	if limit < 1 || limit > maxLogPage {
		return logical.ErrorResponse("limit must be between 1 and %d (got %d)", maxLogPage, limit), nil
	}
	head, err := readLogHead(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	entries := []map[string]interface{}{}
	last := uint64(after)
	for seq := uint64(after) + 1; seq <= head.Seq && len(entries) < limit; seq++ {
		rec, err := readLogEntry(ctx, req.Storage, seq)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue
		}
		var ev map[string]interface{}
		if err := json.Unmarshal(rec.Event, &ev); err != nil {
			ev = map[string]interface{}{"unreadable": true}
		}
		ev["seq"] = rec.Seq
		ev["hash"] = rec.Hash
		ev["prev"] = rec.Prev
		entries = append(entries, ev)
		last = seq
	}
	data := map[string]interface{}{
		"entries":   entries,
		"head_seq":  head.Seq,
		"head_hash": head.Hash,
	}
	if last < head.Seq {
		data["next_after"] = last
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathLogVerify(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	res, err := b.verifyLog(ctx, req.Storage)
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
