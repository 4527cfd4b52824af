package backend

import (
	"cmp"
	"context"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

const pathOperationsHelpSyn = `Start, list and follow bulk operations on keys.`
const pathOperationsHelpDesc = `
A bulk operation applies one action to every key a selector matches:
revoke, rotate, disable (reversible: keys/<client>/<name>/enable) or lock
(the clients of the matched keys, each once). The
selector fields (client, role, owner, environment, issued_before,
issued_after, issued_by, scope) all must match; at least one is required,
or all=true for every key. Keys issued after the operation was accepted are
never matched, and revoked keys never are. A reason is required; it is
recorded on every key changed (the revoke reason) and in the lifecycle log,
where each key's entry carries the operation id as its request_id (and, for
a revoke, details.operation_id).

The work runs in the background in bounded steps, on the active node; the
answer is the operation's id. Its progress (matched, done, skipped, failed,
cursor) is stored after each step, so a restart or failover resumes it
where it stopped, and a key already changed by it is never changed again.
A revoke holds for every key its selector matches from the moment it is
accepted: verify answers "revoked" for them before the worker reaches them.

dry_run=true changes nothing: it scans at most 10,000 key records and
answers how many of them would change, the first 100 of them, and per
client how many keys it would lose. complete says whether the scan reached
the last key; when it did not, send the same request again with the cursor
it answered to continue (the counts are per request: add them up).
`
const pathOperationHelpSyn = `Read a bulk operation's state and progress.`
const pathOperationCancelHelpSyn = `Cancel a running bulk operation.`
const pathOperationCancelHelpDesc = `
Stops the operation at its next step boundary. Keys it already changed stay
changed; keys it had not reached are left as they were (a revoke stops
holding for them at once).
`

const (
	dryRunScanBudget = 10000
	dryRunKeyPage    = 100
)

var operationSelectorFields = []string{"client", "role", "owner", "environment", "issued_before", "issued_after", "issued_by", "scope"}

func (b *apikeysBackend) pathOperations() []*framework.Path {
	idField := map[string]*framework.FieldSchema{
		"id": {Type: framework.TypeString, Description: "Operation id.", Required: true},
	}
	return []*framework.Path{
		{
			Pattern:      "operations/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "operations"},
			Fields: map[string]*framework.FieldSchema{
				"action":        {Type: framework.TypeString, Description: "What to do to each matched key: revoke, rotate, disable or lock (its client)."},
				"reason":        {Type: framework.TypeString, Description: "Why (required; recorded on each key changed and in the log)."},
				"dry_run":       {Type: framework.TypeBool, Description: "Only count and list the keys that would change."},
				"cursor":        {Type: framework.TypeString, Description: "With dry_run: continue the scan after this key (the cursor a dry run answered)."},
				"all":           {Type: framework.TypeBool, Description: "Select every key (required when no selector field is set)."},
				"client":        {Type: framework.TypeString, Description: "Only keys of this client."},
				"role":          {Type: framework.TypeString, Description: "Only keys of this role."},
				"owner":         {Type: framework.TypeString, Description: "Only keys of this owner."},
				"environment":   {Type: framework.TypeString, Description: "Only keys of this environment."},
				"issued_before": {Type: framework.TypeString, Description: "Only keys issued at or before this RFC 3339 time."},
				"issued_after":  {Type: framework.TypeString, Description: "Only keys issued at or after this RFC 3339 time."},
				"issued_by":     {Type: framework.TypeString, Description: "Only keys issued by this entity id or display name."},
				"scope":         {Type: framework.TypeString, Description: "Only keys holding this scope."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation:   &framework.PathOperation{Callback: b.pathOperationsList, Responses: okResponse(operationsListResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathOperationCreate, Responses: okResponse(operationCreateResponseFields())},
			},
			HelpSynopsis:    pathOperationsHelpSyn,
			HelpDescription: pathOperationsHelpDesc,
		},
		{
			Pattern:      "operations/(?P<id>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "operation"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathOperationRead, Responses: okResponse(operationResponseFields)},
			},
			HelpSynopsis:    pathOperationHelpSyn,
			HelpDescription: pathOperationHelpSyn,
		},
		{
			Pattern:      "operations/(?P<id>[^/]+)/cancel$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "cancel", OperationSuffix: "operation"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathOperationCancel, Responses: okResponse(operationResponseFields)},
			},
			HelpSynopsis:    pathOperationCancelHelpSyn,
			HelpDescription: pathOperationCancelHelpDesc,
		},
	}
}

// parseSelector reads the selector fields; now bounds issued_before so
// keys issued after the operation was accepted are never matched.
func parseSelector(d *framework.FieldData, now time.Time) (record.Selector, error) {
	str := func(f string) string { return strings.TrimSpace(d.Get(f).(string)) }
	sel := record.Selector{
		Client: str("client"), Role: str("role"), Owner: str("owner"), Environment: str("environment"),
		IssuedBy: str("issued_by"), Scope: str("scope"),
	}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"issued_before", &sel.IssuedBefore}, {"issued_after", &sel.IssuedAfter}} {
		if v := str(f.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return sel, userErrorf("%s must be an RFC 3339 time such as 2026-11-27T12:00:00Z (got %q)", f.name, v)
			}
			*f.to = t
		}
	}
	all := d.Get("all").(bool)
	switch {
	case sel.Empty() && !all:
		return sel, userErrorf("a selector is required: set at least one of %s, or all=true for every key", strings.Join(operationSelectorFields, ", "))
	case !sel.Empty() && all:
		return sel, userErrorf("all=true selects every key; it cannot be combined with %s", strings.Join(operationSelectorFields, ", "))
	case !sel.IssuedAfter.IsZero() && !sel.IssuedBefore.IsZero() && sel.IssuedAfter.After(sel.IssuedBefore):
		return sel, userErrorf("issued_after (%s) is after issued_before (%s): nothing could match", sel.IssuedAfter.Format(time.RFC3339), sel.IssuedBefore.Format(time.RFC3339))
	}
	sel.All = all
	if sel.IssuedBefore.IsZero() || sel.IssuedBefore.After(now) {
		sel.IssuedBefore = now
	}
	return sel, nil
}

func (b *apikeysBackend) pathOperationCreate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	action := strings.TrimSpace(d.Get("action").(string))
	if _, ok := operationActions[action]; !ok {
		names := make([]string, 0, len(operationActions))
		for n := range operationActions {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, userErrorf("action must be one of %s (got %q)", strings.Join(names, ", "), action)
	}
	reason := strings.TrimSpace(d.Get("reason").(string))
	if reason == "" {
		return nil, userErrorf("reason is required: it is recorded on every key the operation changes")
	}
	now := b.clock.Now()
	sel, err := parseSelector(d, now)
	if err != nil {
		return nil, err
	}
	cursor := strings.TrimSpace(d.Get("cursor").(string))
	if d.Get("dry_run").(bool) {
		return b.operationDryRun(ctx, req.Storage, action, sel, cursor)
	}
	if cursor != "" {
		return nil, userErrorf("cursor continues a dry run; an operation always starts at the first key")
	}
	op := &record.Operation{
		ID: newOperationID(now), Action: action, Selector: sel, Reason: reason, State: record.OperationRunning,
		CreatedBy: actorFromRequest(req), CreatedAt: now, UpdatedAt: now,
	}
	b.ops.mu.Lock()
	err = putOperation(ctx, req.Storage, op)
	if err == nil {
		// From here on verify applies a revoke to every key it selects.
		b.ops.track(op)
		ev := eventFromRequest(req, eventlog.OperationStarted)
		ev.Client = sel.Client
		ev.Details = map[string]string{"operation_id": op.ID, "action": action, "reason": reason, "selector": selectorText(sel)}
		err = b.log.Append(ctx, req.Storage, ev)
	}
	b.ops.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b.ops.wakeUp()
	return &logical.Response{Data: operationData(op)}, nil
}

// selectorText is the selector as the log records it: its set fields.
func selectorText(s record.Selector) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	add("client", s.Client)
	add("role", s.Role)
	add("owner", s.Owner)
	add("environment", s.Environment)
	add("issued_by", s.IssuedBy)
	add("scope", s.Scope)
	if !s.IssuedAfter.IsZero() {
		add("issued_after", s.IssuedAfter.UTC().Format(time.RFC3339Nano))
	}
	add("issued_before", s.IssuedBefore.UTC().Format(time.RFC3339Nano))
	if s.All {
		add("all", "true")
	}
	return strings.Join(parts, " ")
}

// operationDryRun scans at most dryRunScanBudget key records from cursor
// and says which of them the operation would change.
func (b *apikeysBackend) operationDryRun(ctx context.Context, s logical.Storage, action string, sel record.Selector, cursor string) (*logical.Response, error) {
	if cursor != "" {
		c, n, ok := strings.Cut(cursor, "/")
		if !ok || c == "" || n == "" || (sel.Client != "" && c != sel.Client) {
			return nil, userErrorf("cursor must be the cursor a dry run with the same selector answered (<client>/<name>; got %q)", cursor)
		}
	}
	scanned, matched := 0, 0
	keys := []map[string]interface{}{}
	perClient := map[string]interface{}{}
	w := keyWalk{After: cursor, Client: sel.Client, Budget: cmp.Or(b.ops.scanBudget, dryRunScanBudget)}
	next, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		scanned++
		if !sel.Matches(k) || (action == record.OperationRotate && k.Leased) || (action == record.OperationDisable && k.Disabled) {
			return true, nil
		}
		matched++
		if len(keys) < dryRunKeyPage {
			keys = append(keys, map[string]interface{}{"client": k.Client, "name": k.Name, "key_id": k.KeyID, "role": k.Role})
		}
		n, _ := perClient[k.Client].(int)
		perClient[k.Client] = n + 1
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"dry_run": true, "action": action, "selector": selectorData(sel),
		"matched": matched, "scanned": scanned, "keys": keys, "clients": perClient,
		"complete": next == "", "cursor": next,
	}}, nil
}

func (b *apikeysBackend) pathOperationsList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	ids, err := listOperations(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	info := map[string]interface{}{}
	for _, id := range ids {
		op, err := getOperation(ctx, req.Storage, id)
		if err != nil {
			return nil, err
		}
		if op != nil {
			info[id] = map[string]interface{}{"action": op.Action, "state": op.State, "reason": op.Reason, "done": op.Done, "created_at": op.CreatedAt}
		}
	}
	return logical.ListResponseWithInfo(ids, info), nil
}

func (b *apikeysBackend) pathOperationRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	op, err := getOperation(ctx, req.Storage, d.Get("id").(string))
	if err != nil || op == nil {
		return nil, err
	}
	return &logical.Response{Data: operationData(op)}, nil
}

func (b *apikeysBackend) pathOperationCancel(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.Get("id").(string)
	b.ops.mu.Lock()
	defer b.ops.mu.Unlock()
	op, err := getOperation(ctx, req.Storage, id)
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, userErrorf("operation %q does not exist; list them with: vault list <mount>/operations", id)
	}
	if op.Ended() {
		resp := &logical.Response{Data: operationData(op)}
		resp.AddWarning("operation " + id + " is already " + op.State + "; nothing to cancel")
		return resp, nil
	}
	now := b.clock.Now()
	op.State, op.EndedAt, op.UpdatedAt = record.OperationCancelled, now, now
	if err := putOperation(ctx, req.Storage, op); err != nil {
		return nil, err
	}
	b.ops.track(op)
	ev := eventFromRequest(req, eventlog.OperationCancelled)
	ev.Details = operationCounts(op)
	ev.Details["reason"] = op.Reason
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: operationData(op)}, nil
}

func selectorData(s record.Selector) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range map[string]string{"client": s.Client, "role": s.Role, "owner": s.Owner, "environment": s.Environment, "issued_by": s.IssuedBy, "scope": s.Scope} {
		if v != "" {
			out[k] = v
		}
	}
	if !s.IssuedAfter.IsZero() {
		out["issued_after"] = s.IssuedAfter
	}
	out["issued_before"] = s.IssuedBefore
	if s.All {
		out["all"] = true
	}
	return out
}

func operationData(op *record.Operation) map[string]interface{} {
	out := map[string]interface{}{
		"id": op.ID, "action": op.Action, "selector": selectorData(op.Selector), "reason": op.Reason,
		"state": op.State, "scanned": op.Scanned, "matched": op.Matched, "done": op.Done,
		"skipped": op.Skipped, "failed": op.Failed, "cursor": op.Cursor,
		"total": op.Total, "counting": !op.Counted && !op.Ended(), "remaining": op.Remaining(),
		"created_by": op.CreatedBy, "created_at": op.CreatedAt, "updated_at": op.UpdatedAt,
	}
	if !op.EndedAt.IsZero() {
		out["ended_at"] = op.EndedAt
	}
	if op.LastError != "" {
		out["last_error"] = op.LastError
	}
	return out
}

var operationsListResponseFields = map[string]*framework.FieldSchema{
	"keys":     field(framework.TypeStringSlice, "Operation ids, oldest first."),
	"key_info": field(framework.TypeMap, "Per id: action, state, reason, done, created_at."),
}

var operationResponseFields = map[string]*framework.FieldSchema{
	"id":         field(framework.TypeString, "Operation id."),
	"action":     field(framework.TypeString, "revoke, rotate, disable or lock."),
	"selector":   field(framework.TypeMap, "The selector; issued_before is at most when the operation was accepted."),
	"reason":     field(framework.TypeString, "Why, as given."),
	"state":      field(framework.TypeString, "running, completed, cancelled or failed (reached the end, but the action failed on some keys: see failed and last_error)."),
	"scanned":    field(framework.TypeInt, "Key records visited so far."),
	"matched":    field(framework.TypeInt, "Keys matched so far (the total once the operation ended)."),
	"done":       field(framework.TypeInt, "Matched keys the action was applied to."),
	"skipped":    field(framework.TypeInt, "Matched keys the action does not apply to (a leased key does not rotate)."),
	"failed":     field(framework.TypeInt, "Matched keys the action failed on."),
	"total":      field(framework.TypeInt, "Keys the selector matched, counted by a walk that runs ahead of the work."),
	"counting":   field(framework.TypeBool, "The count has not reached the last key yet: total and remaining are lower bounds."),
	"remaining":  field(framework.TypeInt, "Matched keys the work has not reached yet (total - done - skipped - failed; 0 once ended)."),
	"cursor":     field(framework.TypeString, "The last key visited (<client>/<name>); empty before the first step and once ended."),
	"created_by": field(framework.TypeMap, actorDesc),
	"created_at": field(framework.TypeString, "When it was accepted (RFC 3339)."),
	"updated_at": field(framework.TypeString, "When its progress was last stored (RFC 3339)."),
	"ended_at":   field(framework.TypeString, "When it completed, failed or was cancelled (RFC 3339)."),
	"last_error": field(framework.TypeString, "The last per-key failure, if any."),
}

func operationCreateResponseFields() map[string]*framework.FieldSchema {
	out := map[string]*framework.FieldSchema{
		"dry_run":  field(framework.TypeBool, "Set on a dry run's answer."),
		"keys":     field(framework.TypeSlice, "Dry run: the first 100 keys that would change (client, name, key_id, role)."),
		"clients":  field(framework.TypeMap, "Dry run: per client, how many of its keys would change."),
		"complete": field(framework.TypeBool, "Dry run: whether the scan reached the last key (otherwise continue with cursor)."),
	}
	for k, v := range operationResponseFields {
		out[k] = v
	}
	return out
}
