package backend

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

const pathClientRestrictionHelpSyn = `Temporarily restrict every key of a client (an incident's compensating control).`

const pathClientRestrictionHelpDesc = `
A restriction narrows what all keys of a client may do until it lifts itself:
verify intersects each key's effective scopes with "scopes" (forbidden_scope
when nothing is left or a requested scope is outside them), requires
client_ip within "bound_cidrs" (forbidden_ip), and draws every verify of the
client's keys from one extra budget of "rate_limit" per "rate_limit_window"
(rate_limited). At least one of the three is required, and so is "reason".

Its lifetime is required: "ttl" (1m to 744h) or "expires_at" (RFC 3339, within
the same bounds). From then on verify ignores it at once; the next governance
tick records the lift (client.restriction_lifted, actor system) and removes
it. Writing again changes it (fields not sent keep their value; reason and a
lifetime are required on every write); DELETE lifts it early. Every apply,
change and lift is a lifecycle-log entry.

Read answers the restriction with "active" (false once expired and not yet
removed), or 404 when the client has none.
`

// storageRestrictionPrefix lists the clients with a restriction, so the
// tick that records expiries reads only those, never every client.
const storageRestrictionPrefix = "restrictions/"

func (b *apikeysBackend) pathClientRestriction() []*framework.Path {
	return []*framework.Path{{
		Pattern: "clients/(?P<name>[^/]+)/restriction$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "client-restriction",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the client.", Required: true},
			"scopes": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Scopes the client's keys keep while restricted (each key's effective scopes are intersected with them); empty: scopes are not narrowed.",
			},
			"bound_cidrs": {
				Type:        framework.TypeCommaStringSlice,
				Description: "CIDR blocks the client's keys may be verified from while restricted (on top of the client's and role's own); empty: no extra binding.",
			},
			"rate_limit": {
				Type:        framework.TypeInt,
				Description: "Most verifies within rate_limit_window shared by all keys of the client while restricted (0: no extra limit).",
			},
			"rate_limit_window": {
				Type:        framework.TypeDurationSecond,
				Description: "Window of the restriction's rate_limit (1s to 24h, default 1m).",
			},
			"reason": {
				Type:        framework.TypeString,
				Description: "Why the client is restricted, or (DELETE) why it is lifted early. Required on write.",
			},
			"ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "How long the restriction lasts from now (1m to 744h). Required on write unless expires_at is given.",
			},
			"expires_at": {
				Type:        framework.TypeString,
				Description: "When the restriction lifts itself (RFC 3339, 1m to 744h from now). Required on write unless ttl is given.",
			},
		},
		ExistenceCheck: b.restrictionExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: b.pathRestrictionRead, Responses: okResponse(restrictionResponseFields())},
			logical.CreateOperation: &framework.PathOperation{Callback: b.pathRestrictionWrite, Responses: okResponse(restrictionResponseFields())},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRestrictionWrite, Responses: okResponse(restrictionResponseFields())},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:     b.pathRestrictionDelete,
				Responses:    noContentResponse(),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "lift"},
			},
		},
		HelpSynopsis:    pathClientRestrictionHelpSyn,
		HelpDescription: strings.TrimSpace(pathClientRestrictionHelpDesc),
	}}
}

func restrictionResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"client":            field(framework.TypeString, "Name of the client."),
		"active":            field(framework.TypeBool, "Whether the restriction applies now (false once expired, until the tick removes it)."),
		"scopes":            field(framework.TypeStringSlice, "Scopes the client's keys keep (empty: not narrowed)."),
		"bound_cidrs":       field(framework.TypeStringSlice, "Extra addresses the client's keys are bound to."),
		"rate_limit":        field(framework.TypeInt, "Verifies per rate_limit_window shared by the client's keys (0: none)."),
		"rate_limit_window": field(framework.TypeDurationSecond, "Window of rate_limit in seconds."),
		"reason":            field(framework.TypeString, "Why the client is restricted."),
		"expires_at":        field(framework.TypeString, "When the restriction lifts itself (RFC 3339)."),
		"created_at":        field(framework.TypeString, "When the restriction was applied (RFC 3339)."),
		"created_by":        field(framework.TypeMap, actorDesc),
		"updated_at":        field(framework.TypeString, "When the restriction was last changed (RFC 3339)."),
	}
}

func restrictionData(client string, r *record.ClientRestriction, now time.Time) map[string]interface{} {
	return map[string]interface{}{
		"client":            client,
		"active":            r.ActiveAt(now),
		"scopes":            nonNil(r.Scopes),
		"bound_cidrs":       nonNil(r.BoundCIDRs),
		"rate_limit":        r.RateLimit,
		"rate_limit_window": record.Secs(r.EffectiveRateLimitWindow()),
		"reason":            r.Reason,
		"expires_at":        r.ExpiresAt,
		"created_at":        r.CreatedAt,
		"created_by":        r.CreatedBy,
		"updated_at":        r.UpdatedAt,
	}
}

func (b *apikeysBackend) restrictionExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	c, err := b.getClient(ctx, req.Storage, d.Get("name").(string))
	return c != nil && c.Restriction != nil, err
}

func (b *apikeysBackend) pathRestrictionRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	c, err := b.getClient(ctx, req.Storage, name)
	if err != nil || c == nil || c.Restriction == nil {
		return nil, err
	}
	return &logical.Response{Data: restrictionData(name, c.Restriction, b.clock.Now())}, nil
}

func (b *apikeysBackend) pathRestrictionWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	lock := b.locks.client(name)
	lock.Lock()
	defer lock.Unlock()
	c, err := b.getClient(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, userErrorf("client %q does not exist", name)
	}
	if c.Status == record.ClientDeprovisioned {
		return nil, userErrorf("client %q is de-provisioned: its keys are revoked, there is nothing to restrict", name)
	}
	now := b.clock.Now()
	r := &record.ClientRestriction{CreatedAt: now, CreatedBy: actorFromRequest(req)}
	changed := c.Restriction.ActiveAt(now)
	if changed {
		cp := *c.Restriction
		r = &cp
	}
	if err := restrictionFrom(d, r, now); err != nil {
		return nil, err
	}
	r.UpdatedAt = now
	if err := r.Validate(now); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	c.Restriction = r
	c.UpdatedAt = now
	// The marker first: a crash between the two leaves a marker the tick
	// drops, never a restriction the tick cannot find.
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: storageRestrictionPrefix + name, Value: []byte("{}")}); err != nil {
		return nil, err
	}
	if err := b.putClient(ctx, req.Storage, c); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.ClientRestricted)
	ev.Client = name
	ev.Details = restrictionDetails(r)
	ev.Details["changed"] = strconv.FormatBool(changed)
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: restrictionData(name, r, now)}, nil
}

// restrictionFrom reads the request's fields into r; fields not sent keep
// r's value, except reason and the lifetime, which every write states.
func restrictionFrom(d *framework.FieldData, r *record.ClientRestriction, now time.Time) error {
	var err error
	if v, ok := d.GetOk("scopes"); ok {
		r.Scopes = scopes.Normalize(v.([]string))
		if err := scopes.ValidateAll(r.Scopes); err != nil {
			return userErrorf("scopes: %v", err)
		}
	}
	if v, ok := d.GetOk("bound_cidrs"); ok {
		if r.BoundCIDRs, err = record.ParseCIDRs("bound_cidrs", v.([]string)); err != nil {
			return userErrorf("%s", err.Error())
		}
	}
	if v, ok := d.GetOk("rate_limit"); ok {
		r.RateLimit = v.(int)
	}
	if v, ok := d.GetOk("rate_limit_window"); ok {
		r.RateLimitWindow = time.Duration(v.(int)) * time.Second
	}
	r.Reason = strings.TrimSpace(d.Get("reason").(string))
	ttl, hasTTL := d.GetOk("ttl")
	at, hasAt := d.GetOk("expires_at")
	switch {
	case hasTTL && hasAt:
		return userErrorf("ttl and expires_at: give one lifetime, not both")
	case hasTTL:
		r.ExpiresAt = now.Add(time.Duration(ttl.(int)) * time.Second)
	case hasAt:
		t, err := time.Parse(time.RFC3339, at.(string))
		if err != nil {
			return userErrorf("expires_at must be an RFC 3339 time, e.g. 2026-12-01T18:00:00Z")
		}
		r.ExpiresAt = t
	default:
		return userErrorf("ttl or expires_at is required: a restriction always lifts itself (at most %s)", record.MaxRestrictionTTL)
	}
	return nil
}

func restrictionDetails(r *record.ClientRestriction) map[string]string {
	return map[string]string{
		"scopes":      scopes.Join(r.Scopes),
		"bound_cidrs": strings.Join(r.BoundCIDRs, ","),
		"rate_limit":  strconv.Itoa(r.RateLimit),
		"expires_at":  r.ExpiresAt.UTC().Format(time.RFC3339),
		"reason":      r.Reason,
	}
}

func (b *apikeysBackend) pathRestrictionDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := record.ValidateName("client", name); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	ev := eventFromRequest(req, eventlog.ClientRestrictionLifted)
	ev.Details = map[string]string{"how": "early", "reason": strings.TrimSpace(d.Get("reason").(string))}
	_, err := b.liftRestriction(ctx, req.Storage, name, ev, false)
	return nil, err
}

// liftRestriction removes a client's restriction (only an expired one when
// expiredOnly) and logs ev; it reports whether there was one to lift. The
// marker goes last, so a crash leaves it for the next tick to finish.
func (b *apikeysBackend) liftRestriction(ctx context.Context, s logical.Storage, name string, ev eventlog.Event, expiredOnly bool) (bool, error) {
	lock := b.locks.client(name)
	lock.Lock()
	defer lock.Unlock()
	c, err := b.getClient(ctx, s, name)
	if err != nil {
		return false, err
	}
	now := b.clock.Now()
	lifted := c != nil && c.Restriction != nil && !(expiredOnly && c.Restriction.ActiveAt(now))
	if c != nil && c.Restriction != nil && !lifted {
		return false, nil // still in force: keep it and its marker
	}
	if lifted {
		ev.Client = name
		for k, v := range restrictionDetails(c.Restriction) {
			if _, set := ev.Details[k]; !set {
				ev.Details[k] = v
			}
		}
		c.Restriction = nil
		c.UpdatedAt = now
		if err := b.putClient(ctx, s, c); err != nil {
			return false, err
		}
		if err := b.log.Append(ctx, s, ev); err != nil {
			return false, err
		}
	}
	return lifted, s.Delete(ctx, storageRestrictionPrefix+name)
}

// liftExpiredRestrictions records the end of every restriction past its
// expiry (governance tick). Verify stopped applying them at their expiry;
// this removes them and says so in the log, as actor system. It reads only
// the clients that have a restriction.
func (b *apikeysBackend) liftExpiredRestrictions(ctx context.Context, s logical.Storage) error {
	if !b.writeSafe() {
		return nil
	}
	names, err := s.List(ctx, storageRestrictionPrefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		ev := systemEvent(eventlog.ClientRestrictionLifted)
		ev.Details = map[string]string{"how": "expired"}
		if _, err := b.liftRestriction(ctx, s, name, ev, true); err != nil {
			return err
		}
	}
	return nil
}
