package backend

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
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
log. The revocation, the alert and the log entries are stored as one unit:
a report that fails part-way is finished by the next report of the same key
(or by recovery), never left revoked without its alert; a report with an
oversized field is refused before anything is written.

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
			"reporter":    {Type: framework.TypeString, Description: "Who reports it (person or scanner name), at most 256 bytes; defaults to the caller's Vault display name."},
			"source":      {Type: framework.TypeString, Description: "Where it was found (e.g. a repository URL or ticket), at most 2048 bytes."},
			"detected_at": {Type: framework.TypeString, Description: "When the leak was detected (RFC 3339); time-to-revoke is measured from it. Default: now."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLeakReport, Responses: okResponse(leakResponseFields)},
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

// leakReport is a validated leak report.
type leakReport struct {
	key, reporter, source string
	received, detected    time.Time
}

func (b *apikeysBackend) parseLeakReport(req *logical.Request, d *framework.FieldData) (leakReport, string) {
	r := leakReport{received: b.clock.Now()}
	r.key = strings.TrimSpace(d.Get("key").(string))
	r.reporter = strings.TrimSpace(d.Get("reporter").(string))
	if r.reporter == "" {
		r.reporter = req.DisplayName
	}
	// reporter and source go into an alert and two log entries; their
	// limits (limits.go) were checked before the handler ran, so a report
	// is refused whole rather than revoke the key and fail to record why.
	r.source = strings.TrimSpace(d.Get("source").(string))
	r.detected = r.received
	if v := strings.TrimSpace(d.Get("detected_at").(string)); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return r, "detected_at must be an RFC 3339 time such as 2026-11-27T12:00:00Z (nothing was revoked)"
		}
		if t.Before(r.received) {
			r.detected = t
		}
	}
	if r.key == "" {
		return r, "key is required: pass the leaked key in full"
	}
	return r, ""
}

func (b *apikeysBackend) pathLeakReport(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	in, msg := b.parseLeakReport(req, d)
	if msg != "" {
		return nil, userErrorf("%s", msg)
	}
	data := map[string]interface{}{"reporter": in.reporter, "source": in.source}
	answer := func(status, msg string) *logical.Response {
		data["status"], data["message"] = status, msg
		return &logical.Response{Data: data}
	}
	if _, err := keyformat.Parse(in.key); err != nil {
		return answer(leakMalformed, "the value is not a well-formed key of this format (wrong shape or checksum); nothing was revoked"), nil
	}
	s := req.Storage
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return nil, err
	}
	ie, err := b.getIndex(ctx, s, keyHMAC(secret, in.key))
	if err != nil {
		return nil, err
	}
	if ie != nil {
		// The key's lock covers the decision and the revocation, and
		// finishing a report cut off before.
		defer b.locks.lockKey(ie.Client, ie.Name)()
	}
	var k *record.Key
	if ie != nil {
		if k, err = b.getKey(ctx, s, ie.Client, ie.Name); err != nil {
			return nil, err
		}
	}
	leakEvent := func(status string, k *record.Key, version int) eventlog.Event {
		ev := eventFromRequest(req, eventlog.LeakReported)
		if k != nil {
			ev = eventFor(req, eventlog.LeakReported, k, version)
		}
		ev.Details = map[string]string{"status": status, "reporter": in.reporter, "source": in.source, "detected_at": in.detected.Format(time.RFC3339Nano)}
		return ev
	}
	if k == nil || k.KeyID != ie.KeyID {
		if err := b.log.Append(ctx, s, leakEvent(leakUnknown, nil, 0)); err != nil {
			return nil, err
		}
		return answer(leakUnknown, "no key of this mount matches; nothing was revoked"), nil
	}
	data["key_id"], data["client"], data["name"], data["version"] = k.KeyID, k.Client, k.Name, ie.Version
	revoked := func(a *record.Alert) *logical.Response {
		data["alert_id"] = a.ID
		data["versions_revoked"] = splitInts(a.Details["versions_revoked"])
		data["revoked_at"] = a.Time
		ttr, _ := time.ParseDuration(a.Details["time_to_revoke"])
		data["time_to_revoke_seconds"] = ttr.Seconds()
		return answer(leakRevoked, "the key was revoked; issue the client a new key")
	}
	// A report that revoked the key but was cut off before its alert or
	// log entries were stored is finished now, and answered as what it
	// was: the revocation of this leak.
	w, err := b.finishInterrupted(ctx, s, k)
	if err != nil {
		return nil, err
	}
	if a := leakAlertOf(w, k); a != nil {
		return revoked(a), nil
	}
	v := k.Version(ie.Version)
	switch {
	case k.Revoked || (v != nil && v.State == record.StateRevoked):
		if err := b.log.Append(ctx, s, leakEvent(leakAlreadyRevoked, k, ie.Version)); err != nil {
			return nil, err
		}
		return answer(leakAlreadyRevoked, "the key was already revoked; verify rejects it"), nil
	case v == nil || v.State == record.StateRetired:
		if err := b.log.Append(ctx, s, leakEvent(leakAlreadyRetired, k, ie.Version)); err != nil {
			return nil, err
		}
		return answer(leakAlreadyRetired, "this version was already retired by rotation and verify rejects it; the key's current version was not revoked"), nil
	}

	// The revocation, its log entries, the alert and the time-to-revoke
	// are one commit (commitKeyWithAlerts): a failure or crash leaves all
	// of it or, before the key write, none.
	actor := actorFromRequest(req)
	now := b.clock.Now()
	reason := "leaked: reported by " + in.reporter
	versions := k.RevokeAll(now, reason, actor)
	ttr := max(now.Sub(in.detected), 0)
	alert := &record.Alert{
		Type: record.AlertLeakReported, Severity: record.SeverityCritical, Time: now,
		Message: "leaked key reported by " + in.reporter + " and revoked",
		Client:  k.Client, Key: k.Name, KeyID: k.KeyID, Role: k.Role, Version: ie.Version,
		Details: map[string]string{
			"reporter": in.reporter, "source": in.source, "request_id": req.ID,
			"versions_revoked": joinInts(versions), "time_to_revoke": ttr.String(),
		},
		RaisedBy: &actor,
	}
	if err := b.prepareAlert(alert); err != nil {
		return nil, err
	}
	revokeEv := eventFor(req, eventlog.KeyRevoked, k, 0)
	revokeEv.Details = map[string]string{"reason": reason, "versions": joinInts(versions)}
	ev := leakEvent(leakRevoked, k, ie.Version)
	ev.Details["alert_id"] = alert.ID
	ev.Details["versions_revoked"] = joinInts(versions)
	ev.Details["time_to_revoke_ms"] = strconv.FormatInt(ttr.Milliseconds(), 10)
	if err := b.commitKeyWithAlerts(ctx, s, k, nil, []*record.Alert{alert}, revokeEv, ev); err != nil {
		return nil, err
	}
	b.cache.limits.KeyRevoked(k)
	return revoked(alert), nil
}

// leakAlertOf returns the leak_reported alert of key k that the finished
// commit w carried, if w was a leak report's revocation of k.
func leakAlertOf(w *walIndex, k *record.Key) *record.Alert {
	if w == nil || !k.Revoked {
		return nil
	}
	for _, body := range w.Alerts {
		var a record.Alert
		if json.Unmarshal([]byte(body), &a) == nil && a.Type == record.AlertLeakReported && a.KeyID == k.KeyID {
			return &a
		}
	}
	return nil
}

func splitInts(s string) []int {
	out := []int{}
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

var leakResponseFields = map[string]*framework.FieldSchema{
	"status":                 field(framework.TypeString, "Outcome of the report (revoked, already_revoked, unknown)."),
	"reporter":               field(framework.TypeString, "Who reported the leak."),
	"source":                 field(framework.TypeString, "Where the key was found."),
	"key_id":                 field(framework.TypeString, "Id of the leaked key, if it is known."),
	"client":                 field(framework.TypeString, "Client of the leaked key."),
	"name":                   field(framework.TypeString, "Name of the leaked key."),
	"version":                field(framework.TypeInt, "Version of the leaked key."),
	"versions_revoked":       field(framework.TypeSlice, "Versions revoked by the report."),
	"revoked_at":             field(framework.TypeString, "When the key was revoked (RFC 3339)."),
	"time_to_revoke_seconds": field(framework.TypeFloat, "Seconds from detection to revocation."),
	"alert_id":               field(framework.TypeString, "Id of the alert raised."),
	"message":                field(framework.TypeString, "What happened, for a human."),
}
