package backend

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

const pathLeaksHelpSyn = `Report a leaked key: it is revoked at once.`
const pathLeaksHelpDesc = `
For secret-scanning webhooks and people who found a key where it should not
be. The key is looked up by its HMAC (never stored or echoed) and, if it is
a key of this mount that verify could still accept, the WHOLE key (every
version) is revoked at once: a leaked secret means the client's handling of
its secret is compromised, and a new key is issued deliberately after the
incident, not by rotation onto the same channel. A critical alert is raised
and the reporter, source and time-to-revoke are recorded in the lifecycle
log.

The answer's "status" says what happened:
  revoked          the key was revoked now
  already_revoked  the version or key was revoked before (harmless)
  already_retired  the version was already retired by rotation and is not
                   accepted by verify; nothing was revoked (harmless)
  unknown          no key of this mount matches (harmless)
  malformed        the value is not a well-formed key (harmless; scanners
                   may send junk)
`

func (b *apikeysBackend) pathLeaks() []*framework.Path {
	return []*framework.Path{{
		Pattern:      "leaks/?$",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "report", OperationSuffix: "leak"},
		Fields: map[string]*framework.FieldSchema{
			"key":         {Type: framework.TypeString, Description: "The leaked key, in full. It is never stored, logged or returned.", Required: true},
			"reporter":    {Type: framework.TypeString, Description: "Who reports it (person or scanner name); defaults to the caller's Vault display name."},
			"source":      {Type: framework.TypeString, Description: "Where it was found (e.g. a repository URL or ticket)."},
			"detected_at": {Type: framework.TypeString, Description: "When the leak was detected (RFC 3339); time-to-revoke is measured from it. Default: now."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLeakReport},
		},
		HelpSynopsis:    pathLeaksHelpSyn,
		HelpDescription: pathLeaksHelpDesc,
	}}
}

// Leak report outcomes.
const (
	leakRevoked        = "revoked"
	leakAlreadyRevoked = "already_revoked"
	leakAlreadyRetired = "already_retired"
	leakUnknown        = "unknown"
	leakMalformed      = "malformed"
)

func (b *apikeysBackend) pathLeakReport(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	received := b.clock.Now()
	key := strings.TrimSpace(d.Get("key").(string))
	reporter := strings.TrimSpace(d.Get("reporter").(string))
	if reporter == "" {
		reporter = req.DisplayName
	}
	source := strings.TrimSpace(d.Get("source").(string))
	detected := received
	if v := strings.TrimSpace(d.Get("detected_at").(string)); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return logical.ErrorResponse("detected_at must be an RFC 3339 time such as 2026-11-27T12:00:00Z"), nil
		}
		if t.Before(received) {
			detected = t
		}
	}
	data := map[string]interface{}{"reporter": reporter, "source": source}
	answer := func(status, msg string) *logical.Response {
		data["status"], data["message"] = status, msg
		return &logical.Response{Data: data}
	}
	if key == "" {
		return logical.ErrorResponse("key is required: pass the leaked key in full"), nil
	}
	if _, err := keyformat.Parse(key); err != nil {
		return answer(leakMalformed, "the value is not a well-formed key of this format (wrong shape or checksum); nothing was revoked"), nil
	}
	s := req.Storage
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return nil, err
	}
	ie, err := b.getIndex(ctx, s, keyHMAC(secret, key))
	if err != nil {
		return nil, err
	}
	var k *Key
	if ie != nil {
		if k, err = b.getKey(ctx, s, ie.Client, ie.Name); err != nil {
			return nil, err
		}
	}
	leakEvent := func(status string, k *Key, version int) Event {
		ev := eventFromRequest(req, eventLeak)
		if k != nil {
			ev = eventFor(req, eventLeak, k, version)
		}
		ev.Details = map[string]string{"status": status, "reporter": reporter, "source": source, "detected_at": detected.Format(time.RFC3339Nano)}
		return ev
	}
	if k == nil || k.KeyID != ie.KeyID {
		if err := b.appendEvent(ctx, s, leakEvent(leakUnknown, nil, 0)); err != nil {
			return nil, err
		}
		return answer(leakUnknown, "no key of this mount matches; nothing was revoked"), nil
	}
	data["key_id"], data["client"], data["name"], data["version"] = k.KeyID, k.Client, k.Name, ie.Version
	v := k.version(ie.Version)
	switch {
	case k.Revoked || (v != nil && v.State == stateRevoked):
		if err := b.appendEvent(ctx, s, leakEvent(leakAlreadyRevoked, k, ie.Version)); err != nil {
			return nil, err
		}
		return answer(leakAlreadyRevoked, "the key was already revoked; verify rejects it"), nil
	case v == nil || v.State == stateRetired:
		if err := b.appendEvent(ctx, s, leakEvent(leakAlreadyRetired, k, ie.Version)); err != nil {
			return nil, err
		}
		return answer(leakAlreadyRetired, "this version was already retired by rotation and verify rejects it; the key's current version was not revoked"), nil
	}

	reason := "leaked: reported by " + reporter
	rk, versions, err := b.revokeKey(ctx, req, k.Client, k.Name, 0, reason)
	if err != nil {
		return respond(nil, err)
	}
	if rk == nil {
		return answer(leakUnknown, "the key was deleted meanwhile; nothing was revoked"), nil
	}
	revokedAt := rk.RevokedAt
	if revokedAt.IsZero() {
		revokedAt = b.clock.Now()
	}
	ttr := revokedAt.Sub(detected)
	if ttr < 0 {
		ttr = 0
	}
	actor := actorFromRequest(req)
	alert := &Alert{
		Type: alertLeakReported, Severity: severityCritical, Time: revokedAt,
		Message: "leaked key reported by " + reporter + " and revoked",
		Client:  rk.Client, Key: rk.Name, KeyID: rk.KeyID, Role: rk.Role, Version: ie.Version,
		Details: map[string]string{
			"reporter": reporter, "source": source, "request_id": req.ID,
			"versions_revoked": joinInts(versions), "time_to_revoke": ttr.String(),
		},
		RaisedBy: &actor,
	}
	if err := b.raiseAlert(ctx, s, alert); err != nil {
		return nil, err
	}
	ev := leakEvent(leakRevoked, rk, ie.Version)
	ev.Details["alert_id"] = alert.ID
	ev.Details["versions_revoked"] = joinInts(versions)
	ev.Details["time_to_revoke_ms"] = strconv.FormatInt(ttr.Milliseconds(), 10)
	if err := b.appendEvent(ctx, s, ev); err != nil {
		return nil, err
	}
	data["alert_id"] = alert.ID
	data["versions_revoked"] = versions
	data["revoked_at"] = revokedAt
	data["time_to_revoke_seconds"] = ttr.Seconds()
	return answer(leakRevoked, "the key was revoked; issue the client a new key"), nil
}
