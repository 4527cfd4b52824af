package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

const pathRolesHelpSyn = `Manage roles: issuance templates and key policy.`
const pathRolesHelpDesc = `
A role says what keys issued under it may do (scopes, audiences, environment)
and how they are looked after (risk tier, rotation, grace, lifetime, limits).
Writing creates or updates the role; only the fields given change.

Scopes may end in a wildcard segment, e.g. "orders:*". A key's effective
scopes are its own scopes intersected with the role's current scopes, so
narrowing a role takes effect on the next verify, while widening a role never
widens existing keys.

Rotation: rotation_period or rotation_schedule (5-field cron, with an optional
rotation_window); without either the role's risk_tier period applies.
grace_period is how long the previous version stays accepted after rotation;
retirement may wait up to max_grace_period for the new version to be adopted.

The grace (the role's grace_period, else the mount's default_grace_period)
must be shorter than the shortest time between two rotations: the rotation
period, or for rotation_schedule the shortest gap between two consecutive
scheduled times over the whole calendar (e.g. "0 0 28,29 2 *" is one day in
leap years; with a CRON_TZ zone, daylight-saving changes count). Each
rotation retires the previous version at once, so a longer grace would be
cut short.

rotation_window is 0 (a missed scheduled time is caught up whenever the
next rotation tick runs) or at least 2m: rotations start from a tick that
runs about once a minute at any second of it, so a shorter window could be
missed at every scheduled time. A role stored with a shorter window is
applied with 2m.
`

const pathRolesListHelpSyn = `List roles.`
const pathRolesListHelpDesc = `Lists the names of all roles.`

func roleFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name":        {Type: framework.TypeString, Description: "Name of the role: " + record.NameRule + ".", Required: true},
		"description": {Type: framework.TypeString, Description: "Free-text description."},
		"owner":       {Type: framework.TypeString, Description: "Team accountable for the role (keys take their owner from the client)."},
		"scopes": {
			Type:        framework.TypeCommaStringSlice,
			Description: "API scopes keys of this role may carry, e.g. orders:read,orders:*. Required when creating.",
		},
		"audiences": {
			Type:        framework.TypeCommaStringSlice,
			Description: "APIs / resource servers that accept keys of this role (checked by verify's audience).",
		},
		"environment": {
			Type:        framework.TypeString,
			Description: "Environment of the keys (e.g. prod, staging): 1-16 lowercase letters or digits. Part of the key's visible prefix. Required when creating.",
		},
		"risk_tier": {
			Type:        framework.TypeString,
			Description: "Risk tier from the mount's risk_tiers; sets the rotation period when rotation_period and rotation_schedule are unset. Default: the mount's default_risk_tier.",
		},
		"rotation_period": {
			Type:        framework.TypeDurationSecond,
			Description: "Rotate keys this long after their last rotation (at least 1m). Overrides the risk tier.",
		},
		"rotation_schedule": {
			Type:        framework.TypeString,
			Description: "Rotate keys on a standard 5-field cron schedule (e.g. \"0 3 * * 1\", in UTC; prefix CRON_TZ=<zone> for another time zone). Scheduled times must be at least 1m apart. Exclusive with rotation_period.",
		},
		"rotation_window": {
			Type:        framework.TypeDurationSecond,
			Description: "With rotation_schedule: how long after a scheduled time a rotation may still start; a missed window waits for the next scheduled time. 0 (default): no limit; otherwise at least 2m, as rotations start from a tick that runs about once a minute.",
		},
		"grace_period": {
			Type:        framework.TypeDurationSecond,
			Description: "How long the previous version stays accepted after a rotation. Must be shorter than the shortest time between two rotations (rotation_period, the risk tier's period, or the shortest gap between two times of rotation_schedule). Default: the mount's default_grace_period.",
		},
		"max_grace_period": {
			Type:        framework.TypeDurationSecond,
			Description: "Longest grace when retirement waits for the new version to be adopted. Default: the mount's default_max_grace_period.",
		},
		"key_lifetime": {
			Type:        framework.TypeDurationSecond,
			Description: "Hard lifetime of managed keys: they expire this long after issuance whatever the rotation (0: no expiry).",
		},
		"ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Default lease TTL of leased keys from creds/ (capped by max_ttl and the mount's).",
		},
		"max_ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Maximum lease TTL of leased keys from creds/, renewals included.",
		},
		"allowed_client_types": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Client types (internal, external) that may hold keys of this role; empty allows both.",
		},
		"bound_cidrs": {
			Type:        framework.TypeCommaStringSlice,
			Description: "CIDR blocks keys of this role may be used from (checked by verify against client_ip).",
		},
		"issue_bound_cidrs": {
			Type:        framework.TypeCommaStringSlice,
			Description: "CIDR blocks issuance requests for this role must come from.",
		},
		"requires_approval": {
			Type:        framework.TypeBool,
			Description: "Issuance needs an approved request (requests/) by a second Vault entity.",
		},
		"max_keys_per_client": {
			Type:        framework.TypeInt,
			Description: "Most keys (not revoked) one client may hold under this role (0: unlimited).",
		},
		"rate_limit": {
			Type:        framework.TypeInt,
			Description: "Most verifies per key within rate_limit_window (0: unlimited).",
		},
		"rate_limit_window": {
			Type:        framework.TypeDurationSecond,
			Description: "Window of rate_limit (default 1m).",
		},
		"verify_response_fields": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Private fields an active verify answer adds for keys of this role: owner (the key's owner), client_metadata, key_metadata, purpose (the key's). Default none, so nothing private reaches a gateway unless listed.",
		},
		"idle_timeout": {
			Type:        framework.TypeDurationSecond,
			Description: "Revoke keys unused this long (0: never).",
		},
		"expiry_notice": {
			Type:        framework.TypeDurationSecond,
			Description: "Log a key.expiring lifecycle-log entry (delivered as a webhook like every entry) this long before a key of the role expires (its key_lifetime or its lease ends), once per expiry: a renewed lease that moves the expiry notifies again. 0 (default): no notice; at most 8760h.",
		},
		"retrievable": {
			Type:        framework.TypeBool,
			Description: "Whether the current secret can be read again after issuance. Not set (read back as null): true for internal clients, false for external. Turning it off drops the stored secrets (in the background, within a few ticks) and no secret that existed then is ever returned again, even if it is turned back on: only versions created afterwards are.",
		},
	}
}

func (b *apikeysBackend) pathRoles() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathRolesList, Responses: listResponse("roles")},
			},
			HelpSynopsis:    pathRolesListHelpSyn,
			HelpDescription: pathRolesListHelpDesc,
		},
		{
			Pattern: "roles/(?P<name>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role",
			},
			Fields:         roleFields(),
			ExistenceCheck: b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathRoleRead, Responses: okResponse(roleResponseFields())},
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, Responses: okResponse(roleResponseFields())},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, Responses: okResponse(roleResponseFields())},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathRoleDelete, Responses: noContentResponse()},
			},
			HelpSynopsis:    pathRolesHelpSyn,
			HelpDescription: pathRolesHelpDesc,
		},
	}
}

func (b *apikeysBackend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *apikeysBackend) pathRolesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, storageRolePrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return logical.ListResponse(names), nil
}

func (b *apikeysBackend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("role", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	r, err := b.getRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: roleData(r, cfg)}
	for _, w := range r.StoredRuleWarnings(cfg, b.clock.Now()) {
		resp.AddWarning(w)
	}
	return resp, nil
}

// roleLifetimeData is the role's effective rotation and lifetime policy, as
// role reads and the public policy document show it.
func roleLifetimeData(r *record.Role, cfg *record.Config) map[string]interface{} {
	pol := r.RotationPolicy(cfg)
	return map[string]interface{}{
		"environment":       r.Environment,
		"risk_tier":         r.EffectiveTier(cfg),
		"rotation_period":   record.Secs(pol.Period),
		"rotation_schedule": pol.Cron,
		"rotation_window":   record.Secs(pol.EffectiveWindow()),
		"grace_period":      record.Secs(r.EffectiveGracePeriod(cfg)),
		"max_grace_period":  record.Secs(r.EffectiveMaxGracePeriod(cfg)),
		"key_lifetime":      record.Secs(r.KeyLifetime),
		"ttl":               record.Secs(r.TTL),
		"max_ttl":           record.Secs(r.MaxTTL),
		"idle_timeout":      record.Secs(r.IdleTimeout),
		"requires_approval": r.RequiresApproval,
	}
}

func roleData(r *record.Role, cfg *record.Config) map[string]interface{} {
	d := roleLifetimeData(r, cfg)
	for k, v := range map[string]interface{}{
		"name":                 r.Name,
		"description":          r.Description,
		"owner":                r.Owner,
		"scopes":               nonNil(r.Scopes),
		"audiences":            nonNil(r.Audiences),
		"allowed_client_types": nonNil(r.AllowedClientTypes),
		"bound_cidrs":          nonNil(r.BoundCIDRs),
		"issue_bound_cidrs":    nonNil(r.IssueBoundCIDRs),
		"max_keys_per_client":  r.MaxKeysPerClient,
		"rate_limit":           r.RateLimit,
		"rate_limit_window":    record.Secs(r.EffectiveRateLimitWindow()),
		"expiry_notice":        record.Secs(r.ExpiryNotice),
		"created_at":           r.CreatedAt,
		"updated_at":           r.UpdatedAt,
	} {
		d[k] = v
	}
	d["verify_response_fields"] = nonNil(r.VerifyResponseFields)
	// A boolean when set; null when the client's type decides.
	d["retrievable"] = nil
	if r.Retrievable != nil {
		d["retrievable"] = *r.Retrievable
	}
	if !r.RetrievalCutoff.IsZero() {
		d["retrieval_cutoff"] = r.RetrievalCutoff
	}
	return d
}

func (b *apikeysBackend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("role", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	lock := b.locks.role(name)
	lock.Lock()
	defer lock.Unlock()
	// A role is validated against the configuration and a configuration
	// write against every role (checkRolesUnderConfig): holding configMu
	// keeps a concurrent pair of them from each passing against the
	// other's old state.
	b.configMu.Lock()
	defer b.configMu.Unlock()

	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	existing, err := b.getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	r := &record.Role{Name: name, CreatedAt: now}
	if existing != nil {
		cp := *existing
		r = &cp
	}
	if err := applyRoleFields(r, d); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	if err := r.Validate(cfg, now); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	r.UpdatedAt = now
	cutoff := existing != nil && r.RetrievalTurnedOff(existing)
	if cutoff {
		// Stored plaintexts are dropped in the background; until then the
		// cutoff keeps them from being read back.
		r.RetrievalCutoff = now
	}
	if err := b.putRole(ctx, req.Storage, r); err != nil {
		return nil, err
	}
	if existing != nil && existing.RotationPolicy(cfg) != r.RotationPolicy(cfg) {
		b.rescheduleRoleKeys(ctx, req.Storage, name)
	}

	ev := eventFromRequest(req, eventlog.RoleWritten)
	ev.Role = name
	ev.Details = map[string]string{"scopes": scopes.Join(r.Scopes), "environment": r.Environment}
	var widened []string
	if existing != nil {
		widened = scopes.Widened(existing.Scopes, r.Scopes)
		if len(widened) > 0 {
			ev.Details["widened_scopes"] = scopes.Join(widened)
		}
	} else {
		ev.Details["created"] = "true"
	}
	if cutoff {
		ev.Details["retrieval_cutoff"] = now.Format(time.RFC3339Nano)
	}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: roleData(r, cfg)}
	if len(widened) > 0 {
		if err := b.onRoleScopesWidened(ctx, req, r, widened); err != nil {
			return nil, err
		}
		resp.AddWarning(fmt.Sprintf("role %q now allows more scopes (%s); existing keys keep their own scopes and are not widened", name, scopes.Join(widened)))
	}
	return resp, nil
}

// applyRoleFields copies the fields present in the request onto r.
func applyRoleFields(r *record.Role, d *framework.FieldData) error {
	str := func(field string, dst *string) {
		if v, ok := d.GetOk(field); ok {
			*dst = strings.TrimSpace(v.(string))
		}
	}
	dur := func(field string, dst *time.Duration) {
		if v, ok := d.GetOk(field); ok {
			*dst = time.Duration(v.(int)) * time.Second
		}
	}
	str("description", &r.Description)
	str("owner", &r.Owner)
	str("environment", &r.Environment)
	str("risk_tier", &r.RiskTier)
	str("rotation_schedule", &r.RotationSchedule)
	if v, ok := d.GetOk("scopes"); ok {
		r.Scopes = scopes.Normalize(v.([]string))
	}
	if v, ok := d.GetOk("audiences"); ok {
		r.Audiences = scopes.Normalize(v.([]string))
	}
	dur("rotation_period", &r.RotationPeriod)
	dur("rotation_window", &r.RotationWindow)
	dur("key_lifetime", &r.KeyLifetime)
	dur("ttl", &r.TTL)
	dur("max_ttl", &r.MaxTTL)
	dur("rate_limit_window", &r.RateLimitWindow)
	dur("idle_timeout", &r.IdleTimeout)
	dur("expiry_notice", &r.ExpiryNotice)
	if v, ok := d.GetOk("grace_period"); ok {
		g := time.Duration(v.(int)) * time.Second
		r.GracePeriod = &g
	}
	if v, ok := d.GetOk("max_grace_period"); ok {
		g := time.Duration(v.(int)) * time.Second
		r.MaxGracePeriod = &g
	}
	if v, ok := d.GetOk("allowed_client_types"); ok {
		r.AllowedClientTypes = scopes.Normalize(v.([]string))
	}
	var err error
	if v, ok := d.GetOk("bound_cidrs"); ok {
		if r.BoundCIDRs, err = record.ParseCIDRs("bound_cidrs", v.([]string)); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("issue_bound_cidrs"); ok {
		if r.IssueBoundCIDRs, err = record.ParseCIDRs("issue_bound_cidrs", v.([]string)); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("requires_approval"); ok {
		r.RequiresApproval = v.(bool)
	}
	if v, ok := d.GetOk("max_keys_per_client"); ok {
		r.MaxKeysPerClient = v.(int)
	}
	if v, ok := d.GetOk("rate_limit"); ok {
		r.RateLimit = v.(int)
	}
	if v, ok := d.GetOk("verify_response_fields"); ok {
		r.VerifyResponseFields = scopes.Normalize(v.([]string))
		if err := record.ValidVerifyResponseFields(r.VerifyResponseFields); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("retrievable"); ok {
		rv := v.(bool)
		r.Retrievable = &rv
	}
	return nil
}

func (b *apikeysBackend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("role", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	lock := b.locks.role(name)
	lock.Lock()
	defer lock.Unlock()
	r, err := b.getRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	inUse, err := b.keysUsingRole(ctx, req.Storage, name, 1)
	if err != nil {
		return nil, err
	}
	if len(inUse) > 0 {
		return nil, userErrorf("role %q still has keys that are not revoked (e.g. %s); revoke them first", name, inUse[0])
	}
	if err := req.Storage.Delete(ctx, roleStorageKey(name)); err != nil {
		return nil, err
	}
	b.cache.invalidate(roleStorageKey(name))
	ev := eventFromRequest(req, eventlog.RoleDeleted)
	ev.Role = name
	return nil, b.log.Append(ctx, req.Storage, ev)
}
