package backend

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// How values reach the user, whatever endpoint answers (one convention per
// kind, as Vault itself answers):
//
//   - a time is an RFC 3339 string in UTC with second precision
//     ("2026-01-02T15:04:05Z"); a time never set is null;
//   - a configured duration (ttl, grace_period, window, retention, ...) is an
//     integer number of seconds;
//   - a measured duration (time to revoke) is a number of seconds with a
//     fraction, named with a _seconds suffix, as the metrics are.
//
// Storage keeps its own encodings (time.Time with nanoseconds, Go duration
// strings in log details): the hash chain covers the stored bytes, so they
// are rendered on the way out instead of rewritten.

// renderTime formats t as the API shows times.
func renderTime(t time.Time) interface{} {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// detailDurations are the detail fields (of log entries and alerts) that
// hold a configured duration, stored as a Go duration string.
var detailDurations = map[string]bool{
	"grace_period":               true,
	"max_grace_period":           true,
	"ttl":                        true,
	"max_ttl":                    true,
	"window":                     true,
	"rotation_window":            true,
	"review_period":              true,
	"idle_timeout":               true,
	"leased_key_retention":       true,
	"approval_request_retention": true,
	"archived_key_retention":     true,
	"acknowledged_retention":     true,
	"open_retention":             true,
}

// isDetailTime reports whether a detail field holds a time.
func isDetailTime(k string) bool {
	return k == "exp" || strings.HasSuffix(k, "_at") || strings.HasSuffix(k, "_until") || k == "signs_from_about"
}

// renderDetails converts the stored string details of a log entry or an
// alert to the API's conventions. A value that does not parse as its kind
// is shown as stored.
func renderDetails(in map[string]string) map[string]interface{} {
	out := make(map[string]interface{}, len(in))
	for k, v := range in {
		out[k] = v
		switch {
		case detailDurations[k]:
			if d, err := time.ParseDuration(v); err == nil {
				out[k] = int64(d / time.Second)
			}
		case k == "time_to_revoke": // alerts store a Go duration
			if d, err := time.ParseDuration(v); err == nil {
				delete(out, k)
				out["time_to_revoke_seconds"] = d.Seconds()
			}
		case k == "time_to_revoke_ms": // log entries store milliseconds
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				delete(out, k)
				out["time_to_revoke_seconds"] = float64(ms) / 1000
			}
		case isDetailTime(k):
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				out[k] = renderTime(t)
			}
		}
	}
	return out
}

// renderValue converts times and durations anywhere in a response value.
// Maps and slices are converted in place; "details" maps of strings are
// rendered with renderDetails (other string maps, such as a client's
// metadata, are user data and stay as written).
func renderValue(v interface{}) interface{} {
	switch t := v.(type) {
	case time.Time:
		return renderTime(t)
	case *time.Time:
		if t == nil {
			return nil
		}
		return renderTime(*t)
	case time.Duration:
		return int64(t / time.Second)
	case map[string]interface{}:
		renderMap(t)
	case []map[string]interface{}:
		for _, m := range t {
			renderMap(m)
		}
	case []interface{}:
		for i := range t {
			t[i] = renderValue(t[i])
		}
	}
	return v
}

func renderMap(m map[string]interface{}) {
	for k, v := range m {
		if d, ok := v.(map[string]string); ok && k == "details" {
			m[k] = renderDetails(d)
			continue
		}
		m[k] = renderValue(v)
	}
}

// mountPlaceholder stands for the mount's path in hints of error messages
// ("vault list <mount>/roles"); answers fill in the real path.
const mountPlaceholder = "<mount>"

// renderResponse applies the conventions above to a handler's answer and
// fills the mount's path into error messages and warnings. Raw HTTP
// answers (verify's GET form, metrics in Prometheus format) pass as they are.
func renderResponse(req *logical.Request, resp *logical.Response) {
	if resp == nil {
		return
	}
	mount := strings.TrimSuffix(req.MountPoint, "/")
	if mount != "" {
		for i, w := range resp.Warnings {
			resp.Warnings[i] = strings.ReplaceAll(w, mountPlaceholder, mount)
		}
	}
	if resp.Data == nil {
		return
	}
	if _, raw := resp.Data[logical.HTTPRawBody]; raw {
		return
	}
	if msg, ok := resp.Data["error"].(string); ok && mount != "" {
		resp.Data["error"] = strings.ReplaceAll(msg, mountPlaceholder, mount)
	}
	renderMap(resp.Data)
}

// renderedPaths wraps every handler of paths with renderResponse, so no
// endpoint can answer in another convention; a user error (errors.go)
// becomes a 400 carrying its message on the way.
func renderedPaths(paths []*framework.Path) []*framework.Path {
	wrap := func(cb framework.OperationFunc) framework.OperationFunc {
		if cb == nil {
			return nil
		}
		return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			resp, err := answerUserError(cb(ctx, req, d))
			renderResponse(req, resp)
			return resp, err
		}
	}
	for _, p := range paths {
		for op, h := range p.Operations {
			if po, ok := h.(*framework.PathOperation); ok {
				c := *po
				c.Callback = wrap(po.Callback)
				p.Operations[op] = &c
			}
		}
		for op, cb := range p.Callbacks {
			p.Callbacks[op] = wrap(cb)
		}
	}
	return paths
}
