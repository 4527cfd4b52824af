package backend

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
)

const pathMetricsHelpSyn = `Key management metrics, as JSON or Prometheus text.`
const pathMetricsHelpDesc = `
Keys by state, rotation coverage (share of managed keys rotated within their
role's policy), keys overdue for rotation, the age distribution of the
secrets in use, time-to-revoke (from an alert or leak report to the
revocation; p50/p95 over the last 1000), lifecycle event counts (issuance,
rotation, revocation, ...), verify outcomes by code, verify outcomes by
client (the clients named in the mount's metrics_clients get their own
label, all others are counted as "_other" and answers that matched no key as
"_none", so the number of series stays bounded) and open alerts by type.

format=prometheus returns the Prometheus text exposition format (0.0.4), so
Prometheus can scrape
  <vault>/v1/<mount>/metrics?format=prometheus
with a Vault token (bearer_token) whose policy allows reading it.
`

func (b *apikeysBackend) pathMetrics() []*framework.Path {
	return []*framework.Path{{
		Pattern:      "metrics$",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationVerb: "read", OperationSuffix: "metrics"},
		Fields: map[string]*framework.FieldSchema{
			"format": {Type: framework.TypeString, Description: "json (default) or prometheus.", Default: "json"},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathMetricsRead, Responses: metricsResponses()},
		},
		HelpSynopsis:    pathMetricsHelpSyn,
		HelpDescription: pathMetricsHelpDesc,
	}}
}

func (b *apikeysBackend) pathMetricsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	format := strings.TrimSpace(d.Get("format").(string))
	if format != "json" && format != "prometheus" {
		return nil, userErrorf("format must be json or prometheus (got %q)", format)
	}
	m, err := b.collectMetrics(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if format == "prometheus" {
		body, err := m.prometheus()
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]interface{}{
			logical.HTTPContentType: string(prometheusTextFormat),
			logical.HTTPRawBody:     body,
			logical.HTTPStatusCode:  200,
		}}, nil
	}
	return &logical.Response{Data: m.json()}, nil
}

func (m *metricsSnapshot) json() map[string]interface{} {
	buckets := make([]map[string]interface{}, 0, len(ageBounds)+1)
	for i, bound := range ageBounds {
		buckets = append(buckets, map[string]interface{}{"le_seconds": int64(bound.Seconds()), "count": m.AgeCount[i]})
	}
	buckets = append(buckets, map[string]interface{}{"le_seconds": "+Inf", "count": m.AgeTotal})
	return map[string]interface{}{
		"keys_by_state":     m.KeysByState,
		"key_metrics_as_of": m.keysAsOf(),
		"leased_keys":       m.Leased,
		"managed_keys":      m.Managed,
		"rotation_coverage": m.coverage(),
		"rotated_in_policy": m.Covered,
		"overdue_keys":      m.Overdue,
		"key_age": map[string]interface{}{
			"buckets":     buckets,
			"count":       m.AgeTotal,
			"sum_seconds": m.AgeSum,
		},
		"key_lifespan": m.lifespanJSON(),
		"time_to_revoke": map[string]interface{}{
			"count":       len(m.TTR),
			"p50_seconds": quantile(m.TTR, 0.5),
			"p95_seconds": quantile(m.TTR, 0.95),
		},
		"issued_total":             m.Events[eventlog.KeyIssued] + m.Events[eventlog.KeyReissued],
		"rotated_total":            m.Events[eventlog.KeyRotated],
		"revoked_total":            m.Events[eventlog.KeyRevoked],
		"purged_leased_keys_total": m.Purged,
		"events":                   m.Events,
		"verify_outcomes":          m.Verify,
		"verify_by_client":         m.VerifyByClient,
		"open_alerts":              m.Open,
		"dropped_alerts":           m.Dropped,
	}
}

func (m *metricsSnapshot) lifespanJSON() map[string]interface{} {
	l := m.Lifespans
	buckets := make([]map[string]interface{}, 0, len(governance.LifespanBounds)+1)
	for i, bound := range governance.LifespanBounds {
		buckets = append(buckets, map[string]interface{}{"le_seconds": int64(bound.Seconds()), "count": l.Count[i]})
	}
	buckets = append(buckets, map[string]interface{}{"le_seconds": "+Inf", "count": l.Total})
	return map[string]interface{}{"buckets": buckets, "count": l.Total, "sum_seconds": l.Sum}
}

// keysAsOf renders KeysAsOf for JSON ("" if the key metrics were not
// counted).
func (m *metricsSnapshot) keysAsOf() string {
	if m.KeysAsOf.IsZero() {
		return ""
	}
	return m.KeysAsOf.UTC().Format(time.RFC3339)
}

func (m *metricsSnapshot) keysAsOfUnix() float64 {
	if m.KeysAsOf.IsZero() {
		return 0
	}
	return float64(m.KeysAsOf.Unix())
}

var metricsResponseFields = map[string]*framework.FieldSchema{
	"issued_total":             field(framework.TypeInt, "Keys issued, re-issues under a revoked key's name included."),
	"rotated_total":            field(framework.TypeInt, "Rotations."),
	"revoked_total":            field(framework.TypeInt, "Revocations."),
	"managed_keys":             field(framework.TypeInt, "Keys managed."),
	"leased_keys":              field(framework.TypeInt, "Leased keys tracked."),
	"purged_leased_keys_total": field(framework.TypeInt, "Leased keys purged after retention."),
	"overdue_keys":             field(framework.TypeInt, "Keys overdue for rotation."),
	"rotated_in_policy":        field(framework.TypeInt, "Keys rotated within their policy."),
	"rotation_coverage":        field(framework.TypeFloat, "Share of keys rotated within policy (0 to 1)."),
	"keys_by_state":            field(framework.TypeMap, "Keys by state."),
	"key_metrics_as_of":        field(framework.TypeString, "When the key metrics were counted (RFC 3339): the end of the governance sweep's last pass; empty before the first pass of a mount too large to count at once."),
	"open_alerts":              field(framework.TypeMap, "Open alerts by type."),
	"verify_outcomes":          field(framework.TypeMap, "Verifications by outcome."),
	"verify_by_client":         field(framework.TypeMap, "Verifications by client label (the clients of metrics_clients, _other, _none), then by outcome."),
	"events":                   field(framework.TypeMap, "Lifecycle events by type."),
	"key_age":                  field(framework.TypeMap, "Age of keys: buckets, count, sum_seconds."),
	"key_lifespan":             field(framework.TypeMap, "How long ended secrets stayed valid (creation to retirement, revocation or expiry): buckets, count, sum_seconds."),
	"time_to_revoke":           field(framework.TypeMap, "Time from leak to revocation: count, p50_seconds, p95_seconds."),
	"dropped_alerts":           field(framework.TypeInt, "Alerts dropped by the alert bound."),
}

// metricsResponses declares the JSON answer; format=prometheus answers
// with the text exposition format as a raw body instead.
func metricsResponses() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{
		Description: "OK: the metrics as JSON (format=json), or the Prometheus text exposition format as the raw body (format=prometheus).",
		Fields:      metricsResponseFields,
	}}}
}
