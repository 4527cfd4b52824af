package backend

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathResponsesHelpSyn = `Manage automated response policies: what the engine does by itself when an alert is raised.`
const pathResponsesHelpDesc = `
A response policy selects alerts by type (alert_types, "*" for all) and
least severity (min_severity) and names an action: notify (the default: the
alert is only delivered, as every alert is), lock_client, revoke_key,
rotate_key (only keys their owner can read back), or require_reapproval (lock
the client; it unlocks only with an approved unlock request: requests with
kind=unlock, approved by another person, then clients/<name>/unlock with
approval_id). Clients in exempt_clients are never acted on.

Every action is taken by "system", names the alert in the lifecycle log
(response.executed with alert_id, policy, action, outcome) and is undone as
the manual action is (unlock, issue a new key). Several policies may select
one alert; each distinct action is taken once.

The rate cap: a policy takes at most max_actions actions per window (default
10 per 1h), across all clients, so a burst of alerts cannot lock every
client at once. Beyond it the action is not taken: response.skipped is
logged and one critical response_rate_capped alert is raised per policy and
window.
`
const pathResponsesListHelpSyn = `List automated response policies.`
const pathResponsesListHelpDesc = `Lists the names of the response policies.`

func responsePolicyFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeString, Description: "Name of the policy: " + record.NameRule + ".", Required: true},
		"alert_types": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Alert types the policy responds to (" + strings.Join(selectableAlertTypes(), ", ") + `), or "*" for all. Required when creating.`,
		},
		"min_severity": {
			Type:          framework.TypeString,
			Description:   "Least severity of the alerts it responds to: info, warning or critical; empty (the default) for any.",
			AllowedValues: []interface{}{"", record.SeverityInfo, record.SeverityWarning, record.SeverityCritical},
		},
		"action": {
			Type:          framework.TypeString,
			Description:   "What to do: notify (default), lock_client, revoke_key, rotate_key or require_reapproval.",
			AllowedValues: []interface{}{record.ResponseNotify, record.ResponseLockClient, record.ResponseRevokeKey, record.ResponseRotateKey, record.ResponseRequireReapproval},
		},
		"exempt_clients": {Type: framework.TypeCommaStringSlice, Description: "Clients the policy never acts on."},
		"max_actions":    {Type: framework.TypeInt, Description: "Rate cap: at most this many actions per window, across all clients (1 to 1000, default 10)."},
		"window":         {Type: framework.TypeDurationSecond, Description: "Rate cap window (1m to 30d, default 1h)."},
		"enabled":        {Type: framework.TypeBool, Description: "Whether the policy acts (default true)."},
	}
}

// selectableAlertTypes are the types a policy may name.
func selectableAlertTypes() []string {
	var out []string
	for _, t := range record.AlertTypes {
		if t != record.AlertResponseRateCapped {
			out = append(out, t)
		}
	}
	return out
}

var responsePolicyResponseFields = map[string]*framework.FieldSchema{
	"name":           field(framework.TypeString, "Name of the policy."),
	"alert_types":    field(framework.TypeStringSlice, `Alert types it responds to ("*": all).`),
	"min_severity":   field(framework.TypeString, "Least severity it responds to (empty: any)."),
	"action":         field(framework.TypeString, "notify, lock_client, revoke_key, rotate_key or require_reapproval."),
	"exempt_clients": field(framework.TypeStringSlice, "Clients it never acts on."),
	"max_actions":    field(framework.TypeInt, "Rate cap: actions per window."),
	"window":         field(framework.TypeDurationSecond, "Rate cap window in seconds."),
	"enabled":        field(framework.TypeBool, "Whether the policy acts."),
	"created_at":     field(framework.TypeString, "When the policy was created (RFC 3339)."),
	"updated_at":     field(framework.TypeString, "When the policy was last written (RFC 3339)."),
}

func (b *apikeysBackend) pathResponsePolicies() []*framework.Path {
	return []*framework.Path{
		{
			Pattern:      "responses/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "response-policies"},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathResponsePoliciesList, Responses: listResponse("response policies")},
			},
			HelpSynopsis:    pathResponsesListHelpSyn,
			HelpDescription: pathResponsesListHelpDesc,
		},
		{
			Pattern:        "responses/(?P<name>[^/]+)$",
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "response-policy"},
			Fields:         responsePolicyFields(),
			ExistenceCheck: b.responsePolicyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathResponsePolicyRead, Responses: okResponse(responsePolicyResponseFields)},
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathResponsePolicyWrite, Responses: okResponse(responsePolicyResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathResponsePolicyWrite, Responses: okResponse(responsePolicyResponseFields)},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathResponsePolicyDelete, Responses: noContentResponse()},
			},
			HelpSynopsis:    pathResponsesHelpSyn,
			HelpDescription: pathResponsesHelpDesc,
		},
	}
}

func (b *apikeysBackend) responsePolicyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	p, err := getResponsePolicy(ctx, req.Storage, d.Get("name").(string))
	return p != nil, err
}

func (b *apikeysBackend) pathResponsePoliciesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	list, err := b.responsePolicies(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list))
	for _, p := range list {
		names = append(names, p.Name)
	}
	return logical.ListResponse(names), nil
}

func (b *apikeysBackend) pathResponsePolicyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("response policy", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	p, err := getResponsePolicy(ctx, req.Storage, name)
	if err != nil || p == nil {
		return nil, err
	}
	return &logical.Response{Data: responsePolicyData(p)}, nil
}

func (b *apikeysBackend) pathResponsePolicyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("response policy", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	b.responses.mu.Lock()
	defer b.responses.mu.Unlock()
	existing, err := getResponsePolicy(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	p := &record.ResponsePolicy{
		Name: name, Action: record.ResponseNotify, MaxActions: record.DefaultResponseMaxActions,
		Window: record.DefaultResponseWindow, Enabled: true, CreatedAt: now,
	}
	if existing != nil {
		cp := *existing
		p = &cp
	}
	applyResponsePolicyFields(p, d)
	if err := p.Validate(); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	p.UpdatedAt = now
	key := responsePolicyStorageKey(name)
	if err := putJSON(ctx, req.Storage, key, "response policy", p); err != nil {
		return nil, err
	}
	b.cache.invalidate(key)
	ev := eventFromRequest(req, eventlog.ResponsePolicyWritten)
	ev.Details = map[string]string{
		"policy": name, "action": p.Action, "alert_types": strings.Join(p.AlertTypes, ","),
		"enabled": strconv.FormatBool(p.Enabled), "created": strconv.FormatBool(existing == nil),
	}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: responsePolicyData(p)}
	if p.Action == record.ResponseRotateKey {
		resp.AddWarning("rotate_key rotates only keys their owner can read back (retrievable); for the others it is skipped and logged")
	}
	return resp, nil
}

// applyResponsePolicyFields copies the fields present in the request onto p.
func applyResponsePolicyFields(p *record.ResponsePolicy, d *framework.FieldData) {
	if v, ok := d.GetOk("alert_types"); ok {
		p.AlertTypes = cleanList(v.([]string))
	}
	if v, ok := d.GetOk("min_severity"); ok {
		p.MinSeverity = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("action"); ok {
		p.Action = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("exempt_clients"); ok {
		p.ExemptClients = cleanList(v.([]string))
	}
	if v, ok := d.GetOk("max_actions"); ok {
		p.MaxActions = v.(int)
	}
	if v, ok := d.GetOk("window"); ok {
		p.Window = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("enabled"); ok {
		p.Enabled = v.(bool)
	}
}

// cleanList trims the entries of a list and drops empty and repeated ones.
func cleanList(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (b *apikeysBackend) pathResponsePolicyDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("response policy", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	b.responses.mu.Lock()
	defer b.responses.mu.Unlock()
	key := responsePolicyStorageKey(name)
	existing, err := getResponsePolicy(ctx, req.Storage, name)
	if err != nil || existing == nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, key); err != nil {
		return nil, err
	}
	b.cache.invalidate(key)
	// A policy created again under this name starts with a fresh cap.
	if err := req.Storage.Delete(ctx, responseCapStorageKey(name)); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.ResponsePolicyDeleted)
	ev.Details = map[string]string{"policy": name}
	return nil, b.log.Append(ctx, req.Storage, ev)
}

func responsePolicyData(p *record.ResponsePolicy) map[string]interface{} {
	return map[string]interface{}{
		"name":           p.Name,
		"alert_types":    nonNil(p.AlertTypes),
		"min_severity":   p.MinSeverity,
		"action":         p.Action,
		"exempt_clients": nonNil(p.ExemptClients),
		"max_actions":    p.MaxActions,
		"window":         record.Secs(p.Window),
		"enabled":        p.Enabled,
		"created_at":     p.CreatedAt,
		"updated_at":     p.UpdatedAt,
	}
}
