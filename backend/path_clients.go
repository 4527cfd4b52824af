package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathClientsHelpSyn = `Manage clients: the API consumers that hold keys.`
const pathClientsHelpDesc = `
A client is an internal service or an external partner. Every client has an
accountable owner. Writing creates or updates the client (only the fields
given change). Deleting de-provisions it: all its keys are revoked at once and
the record stays as a tombstone for audit; the name is not reused.
`

const pathClientsListHelpSyn = `List clients.`
const pathClientsListHelpDesc = `Lists the names of all clients, including de-provisioned tombstones.`

func clientFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name": {
			Type:        framework.TypeString,
			Description: "Name of the client: " + record.NameRule + ".",
			Required:    true,
		},
		"owner": {
			Type:        framework.TypeString,
			Description: "Team or person accountable for the client and its keys. Required when creating.",
		},
		"type": {
			Type:          framework.TypeString,
			Description:   "internal (a service of this organisation) or external (a partner). Fixed at creation; default internal.",
			AllowedValues: []interface{}{record.ClientInternal, record.ClientExternal},
		},
		"description": {Type: framework.TypeString, Description: "Free-text description."},
		"contact":     {Type: framework.TypeString, Description: "How to reach the owner in an incident (e-mail, pager, channel)."},
		"allowed_environments": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Environments (e.g. prod, staging) the client may hold keys for; empty allows all.",
		},
		"bound_cidrs": {
			Type:        framework.TypeCommaStringSlice,
			Description: "CIDR blocks the client's keys may be used from (checked by verify against client_ip); empty allows all.",
		},
		"metadata": {
			Type:        framework.TypeKVPairs,
			Description: "Arbitrary non-secret key=value pairs.",
		},
		"rate_limit": {
			Type:        framework.TypeInt,
			Description: "Most verifies within rate_limit_window shared by all keys of the client (0: unlimited, the default); each role's per-key rate_limit applies as well.",
		},
		"rate_limit_window": {
			Type:        framework.TypeDurationSecond,
			Description: "Window of the client's rate_limit (1s to 24h, default 1m).",
		},
	}
}

func (b *apikeysBackend) pathClients() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "clients/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "clients",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathClientsList, Responses: listResponse("clients")},
			},
			HelpSynopsis:    pathClientsListHelpSyn,
			HelpDescription: pathClientsListHelpDesc,
		},
		{
			Pattern: "clients/(?P<name>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "client",
			},
			Fields:         clientFields(),
			ExistenceCheck: b.clientExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathClientRead, Responses: okResponse(clientResponseFields())},
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathClientWrite, Responses: okResponse(clientResponseFields())},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathClientWrite, Responses: okResponse(clientResponseFields())},
				logical.DeleteOperation: &framework.PathOperation{
					Callback: b.pathClientDelete,
					Responses: okResponse(map[string]*framework.FieldSchema{
						"client":       field(framework.TypeString, "Name of the deprovisioned client."),
						"status":       field(framework.TypeString, "Status of the client after the request (deprovisioned)."),
						"keys_revoked": field(framework.TypeInt, "Number of the client's keys revoked by the request."),
					}),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "deprovision"},
				},
			},
			HelpSynopsis:    pathClientsHelpSyn,
			HelpDescription: pathClientsHelpDesc,
		},
	}
}

func (b *apikeysBackend) clientExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	c, err := b.getClient(ctx, req.Storage, d.Get("name").(string))
	return c != nil, err
}

func (b *apikeysBackend) pathClientsList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, storageClientPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return logical.ListResponse(names), nil
}

func (b *apikeysBackend) pathClientRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	c, err := b.getClient(ctx, req.Storage, name)
	if err != nil || c == nil {
		return nil, err
	}
	return &logical.Response{Data: clientData(c)}, nil
}

func (b *apikeysBackend) pathClientWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	lock := b.locks.client(name)
	lock.Lock()
	defer lock.Unlock()

	existing, err := b.getClient(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	c := existing
	if c == nil {
		c = &record.Client{Name: name, Type: record.ClientInternal, Status: record.ClientActive, CreatedAt: now, CreatedBy: actorFromRequest(req)}
	} else if c.Status == record.ClientDeprovisioned {
		return nil, userErrorf("client %q was de-provisioned at %s and its name is kept as a tombstone; choose a new name", name, c.StatusChangedAt.Format("2006-01-02T15:04:05Z"))
	}
	if v, ok := d.GetOk("owner"); ok {
		c.Owner = strings.TrimSpace(v.(string))
	}
	if c.Owner == "" {
		return nil, userErrorf("owner is required: name the team or person accountable for client %q", name)
	}
	if v, ok := d.GetOk("type"); ok {
		t := v.(string)
		if t != record.ClientInternal && t != record.ClientExternal {
			return nil, userErrorf("type must be %q or %q (got %q)", record.ClientInternal, record.ClientExternal, t)
		}
		if existing != nil && t != existing.Type {
			return nil, userErrorf("type of client %q is %q and cannot be changed; create a new client instead", name, existing.Type)
		}
		c.Type = t
	}
	if v, ok := d.GetOk("description"); ok {
		c.Description = v.(string)
	}
	if v, ok := d.GetOk("contact"); ok {
		c.Contact = v.(string)
	}
	if v, ok := d.GetOk("allowed_environments"); ok {
		envs, err := validateEnvironments("allowed_environments", v.([]string))
		if err != nil {
			return nil, userErrorf("%s", err.Error())
		}
		c.AllowedEnvironments = envs
	}
	if v, ok := d.GetOk("bound_cidrs"); ok {
		cidrs, err := record.ParseCIDRs("bound_cidrs", v.([]string))
		if err != nil {
			return nil, userErrorf("%s", err.Error())
		}
		c.BoundCIDRs = cidrs
	}
	if v, ok := d.GetOk("metadata"); ok {
		c.Metadata = v.(map[string]string)
	}
	if err := clientRateFrom(d, c); err != nil {
		return nil, err
	}
	c.UpdatedAt = now
	if err := b.putClient(ctx, req.Storage, c); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.ClientWritten)
	ev.Client = name
	ev.Details = map[string]string{"owner": c.Owner, "type": c.Type}
	if existing == nil {
		ev.Details["created"] = "true"
	}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: clientData(c)}, nil
}

func (b *apikeysBackend) pathClientDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	res, err := b.setClientStatus(ctx, req, name, record.ClientDeprovisioned, "de-provisioned")
	if err != nil {
		return nil, err
	}
	if res.client == nil {
		return nil, nil // deleting what does not exist is not an error in Vault
	}
	resp := &logical.Response{Data: map[string]interface{}{
		"client":       name,
		"status":       record.ClientDeprovisioned,
		"keys_revoked": res.revoked,
	}}
	if res.leased > 0 {
		// A plugin cannot end Vault's leases; their keys are dead already.
		resp.AddWarning(fmt.Sprintf("leased keys revoked: %d. They no longer verify, but Vault lists their leases until they expire; to clear them now: vault lease revoke -prefix %s/creds/%s", res.leased, mountPlaceholder, name))
	}
	return resp, nil
}

func validateEnvironments(field string, envs []string) ([]string, error) {
	var out []string
	for _, e := range envs {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if err := record.ValidateEnvironment(e); err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		out = append(out, e)
	}
	return out, nil
}
