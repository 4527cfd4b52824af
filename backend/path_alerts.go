package backend

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathAlertsHelpSyn = `List and read alerts.`
const pathAlertsHelpDesc = `
Alerts are raised for: bursts of verifies of one key (verify_burst), use
from an address outside the key's bound CIDRs (forbidden_ip) or its usual
set (new_address), attempts with scopes or audiences the key lacks
(forbidden_scope, forbidden_audience), failed-verify bursts that suggest
guessing (failed_verify_burst), role updates that widen scopes
(role_scopes_widened), rotations not adopted (rotation_not_adopted), keys
overdue for rotation (rotation_overdue), keys unused for the review_period
(review_due) and leak reports (leak_reported). Thresholds are in config:
alert_window, verify_burst_threshold, failed_verify_threshold. Each alert is
also a lifecycle-log entry.

Acknowledged alerts are kept 90 days after they were raised; open ones until
the end of the UTC day 180 days after. The lifecycle log keeps their
alert.raised and alert.acknowledged entries, and an alerts.pruned entry names
the alerts deleted.

LIST returns alert ids (newest first) with a summary; READ returns the full
alerts, newest first, narrowed by the filters. Reading or listing first
stores what verify detected since the last periodic run, so the answer is
up to date.

Alerts detected by verify count the occurrences they stand for ("count").
Once stored, an alert is not changed: when the same key and type (or, for
failed_verify_burst, the mount) goes on within the same alert_window, a
follow-up alert counts what came after, and its details.continues names
the alert it continues. The counts of an alert and its follow-ups add up
to every occurrence in the window.
`
const pathAlertHelpSyn = `Read one alert.`
const pathAlertAckHelpSyn = `Acknowledge an alert.`
const pathAlertAckHelpDesc = `Marks the alert acknowledged, recording who did it, when and an optional note.`

const defaultAlertLimit = 100
const maxAlertLimit = 1000

func (b *apikeysBackend) pathAlerts() []*framework.Path {
	idField := map[string]*framework.FieldSchema{
		"id":   {Type: framework.TypeString, Description: "Alert id.", Required: true},
		"note": {Type: framework.TypeString, Description: "Optional note recorded with the acknowledgement."},
	}
	return []*framework.Path{
		{
			Pattern:      "alerts/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "alerts"},
			Fields: map[string]*framework.FieldSchema{
				"type":         {Type: framework.TypeString, Description: "Only alerts of this type."},
				"client":       {Type: framework.TypeString, Description: "Only alerts about this client."},
				"key_id":       {Type: framework.TypeString, Description: "Only alerts about this key."},
				"severity":     {Type: framework.TypeString, Description: "Only alerts of this severity (info, warning, critical)."},
				"acknowledged": {Type: framework.TypeString, Description: "Only acknowledged (true) or unacknowledged (false) alerts."},
				"since":        {Type: framework.TypeString, Description: "Only alerts raised at or after this RFC 3339 time."},
				"limit":        {Type: framework.TypeInt, Description: "Most alerts to return, 1-1000 (default 100).", Default: defaultAlertLimit},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathAlertsList, Responses: okResponse(alertsListResponseFields)},
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathAlertsRead, Responses: okResponse(alertsReadResponseFields)},
			},
			HelpSynopsis:    pathAlertsHelpSyn,
			HelpDescription: pathAlertsHelpDesc,
		},
		{
			Pattern:      "alerts/(?P<id>[^/]+)$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "alert"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathAlertRead, Responses: okResponse(alertResponseFields)},
			},
			HelpSynopsis:    pathAlertHelpSyn,
			HelpDescription: pathAlertHelpSyn,
		},
		{
			Pattern:      "alerts/(?P<id>[^/]+)/ack$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "acknowledge", OperationSuffix: "alert"},
			Fields:       idField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathAlertAck, Responses: okResponse(alertResponseFields)},
			},
			HelpSynopsis:    pathAlertAckHelpSyn,
			HelpDescription: pathAlertAckHelpDesc,
		},
	}
}

func parseAlertFilter(d *framework.FieldData) (record.AlertFilter, int, error) {
	f := record.AlertFilter{
		Typ:      strings.TrimSpace(d.Get("type").(string)),
		Client:   strings.TrimSpace(d.Get("client").(string)),
		KeyID:    strings.TrimSpace(d.Get("key_id").(string)),
		Severity: strings.TrimSpace(d.Get("severity").(string)),
	}
	if f.Typ != "" && !slices.Contains(record.AlertTypes, f.Typ) {
		return f, 0, userErrorf("type must be one of %s (got %q)", strings.Join(record.AlertTypes, ", "), f.Typ)
	}
	switch f.Severity {
	case "", record.SeverityInfo, record.SeverityWarning, record.SeverityCritical:
	default:
		return f, 0, userErrorf("severity must be info, warning or critical (got %q)", f.Severity)
	}
	switch v := strings.TrimSpace(d.Get("acknowledged").(string)); v {
	case "":
	case "true", "false":
		ack := v == "true"
		f.Acknowledged = &ack
	default:
		return f, 0, userErrorf("acknowledged must be true or false (got %q)", v)
	}
	if v := strings.TrimSpace(d.Get("since").(string)); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, 0, userErrorf("since must be an RFC 3339 time such as 2026-11-27T12:00:00Z (got %q)", v)
		}
		f.Since = t
	}
	limit := d.Get("limit").(int)
	if limit < 1 || limit > maxAlertLimit {
		return f, 0, userErrorf("limit must be between 1 and %d (got %d)", maxAlertLimit, limit)
	}
	return f, limit, nil
}

// alertsFor lists the alerts a list or read request asks for, after
// storing the detections made since the last tick so none is missing.
func (b *apikeysBackend) alertsFor(ctx context.Context, req *logical.Request, d *framework.FieldData) ([]*record.Alert, error) {
	f, limit, err := parseAlertFilter(d)
	if err != nil {
		return nil, err
	}
	if err := b.flushDetections(ctx, req.Storage); err != nil {
		return nil, err
	}
	return listAlerts(ctx, req.Storage, f, limit)
}

func (b *apikeysBackend) pathAlertsList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	alerts, err := b.alertsFor(ctx, req, d)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(alerts))
	info := map[string]interface{}{}
	for _, a := range alerts {
		keys = append(keys, a.ID)
		info[a.ID] = map[string]interface{}{
			"type": a.Type, "severity": a.Severity, "time": a.Time, "client": a.Client,
			"key_id": a.KeyID, "acknowledged": a.Acknowledged, "message": a.Message,
		}
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

func (b *apikeysBackend) pathAlertsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	alerts, err := b.alertsFor(ctx, req, d)
	if err != nil {
		return nil, err
	}
	items := make([]map[string]interface{}, 0, len(alerts))
	for _, a := range alerts {
		items = append(items, alertData(a))
	}
	return &logical.Response{Data: map[string]interface{}{"alerts": items, "count": len(items)}}, nil
}

func (b *apikeysBackend) pathAlertRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	a, err := getAlert(ctx, req.Storage, d.Get("id").(string))
	if err != nil || a == nil {
		return nil, err
	}
	return &logical.Response{Data: alertData(a)}, nil
}

func (b *apikeysBackend) pathAlertAck(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.Get("id").(string)
	defer b.gov.LockAlertChange()() // not within a tick's flush or retention; see raiseAlert
	a, err := getAlert(ctx, req.Storage, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, userErrorf("alert %q does not exist; list alerts with: vault list <mount>/alerts", id)
	}
	if a.Acknowledged {
		resp := &logical.Response{Data: alertData(a)}
		resp.AddWarning("alert " + id + " was already acknowledged")
		return resp, nil
	}
	actor := actorFromRequest(req)
	a.Acknowledged, a.AcknowledgedAt, a.AcknowledgedBy = true, b.clock.Now(), &actor
	a.AckNote = strings.TrimSpace(d.Get("note").(string))
	if err := putAlert(ctx, req.Storage, a); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.AlertAcknowledged)
	ev.Client, ev.Key, ev.KeyID, ev.Role = a.Client, a.Key, a.KeyID, a.Role
	ev.Details = map[string]string{"alert_id": a.ID, "type": a.Type, "note": a.AckNote}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: alertData(a)}, nil
}

var alertResponseFields = map[string]*framework.FieldSchema{
	"id":              field(framework.TypeString, "Identifier of the alert."),
	"type":            field(framework.TypeString, "Kind of alert (leak_reported, verify_burst, ...)."),
	"severity":        field(framework.TypeString, "Severity of the alert."),
	"time":            field(framework.TypeString, "When the alert was raised (RFC 3339)."),
	"message":         field(framework.TypeString, "What happened, for a human."),
	"client":          field(framework.TypeString, "Client concerned, if any."),
	"name":            field(framework.TypeString, "Key name concerned, if any."),
	"key":             field(framework.TypeString, "Key name concerned, if any."),
	"key_id":          field(framework.TypeString, "Key id concerned, if any."),
	"role":            field(framework.TypeString, "Role concerned, if any."),
	"version":         field(framework.TypeInt, "Key version concerned, if any."),
	"details":         field(framework.TypeMap, "Details of the alert (times rendered as RFC 3339, durations as seconds)."),
	"count":           field(framework.TypeInt, "Occurrences folded into this alert."),
	"raised_by":       field(framework.TypeMap, "Who raised the alert: type, entity_id, display_name, accessor."),
	"acknowledged":    field(framework.TypeBool, "Whether the alert was acknowledged."),
	"acknowledged_at": field(framework.TypeString, "When it was acknowledged (RFC 3339)."),
	"acknowledged_by": field(framework.TypeMap, "Who acknowledged it: type, entity_id, display_name, accessor."),
	"ack_note":        field(framework.TypeString, "Note given with the acknowledgement."),
}

var alertsReadResponseFields = map[string]*framework.FieldSchema{
	"alerts": field(framework.TypeSlice, "The alerts matching the filter, newest first."),
	"count":  field(framework.TypeInt, "Number of alerts returned."),
}

var alertsListResponseFields = map[string]*framework.FieldSchema{
	"keys":     field(framework.TypeStringSlice, "Ids of the alerts."),
	"key_info": field(framework.TypeMap, "Summary of each alert by id."),
}
