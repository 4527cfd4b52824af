package backend

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathInventoryExportHelpSyn = `Export the inventory for an audit, as JSON lines or CSV, a page at a time.`
const pathInventoryExportHelpDesc = `
Answers one page of the inventory (same filters, "after" and "limit", same
bounded scan) as a raw body: format=jsonl (application/x-ndjson, one key a
line) or format=csv (text/csv, a header row then one key a row, quoted by
RFC 4180). No secret is exported: names, ids, owner, scopes, times, state.

When more keys follow, the body ends with the cursor of the next page: a
last line {"next":"<cursor>"} in JSON lines, a last row "#next,<cursor>"
(padded with empty fields to the width of the others) in CSV. Pass it as "after" for the next page; a body without it is the end.
A page may carry few or no keys and still a next (bounded scan, see
inventory). Read it with curl (the CLI's "vault read" decodes JSON answers
only): curl -H "X-Vault-Token: ..." "$VAULT_ADDR/v1/<mount>/inventory/export?format=csv".
Tombstones are not exported (see inventory).
`

// exportColumns are the exported fields, in CSV column order.
var exportColumns = []string{
	"key_id", "client", "name", "role", "owner", "environment", "state", "scopes",
	"issued_by", "created_at", "expires_at", "next_rotation_at", "last_rotated_at",
	"last_used_at", "leased", "version",
}

func (b *apikeysBackend) pathInventoryExport() []*framework.Path {
	fields := inventoryFields()
	delete(fields, "tombstones_after")
	fields["format"] = &framework.FieldSchema{Type: framework.TypeString, Description: "jsonl (default) or csv.", Default: "jsonl"}
	return []*framework.Path{{
		Pattern: "inventory/export$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "export",
			OperationSuffix: "inventory",
		},
		Fields: fields,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:  b.pathInventoryExportRead,
				Responses: rawResponse("The page as JSON lines or CSV, ending with the next cursor when more keys follow."),
			},
		},
		HelpSynopsis:    pathInventoryExportHelpSyn,
		HelpDescription: pathInventoryExportHelpDesc,
	}}
}

func (b *apikeysBackend) pathInventoryExportRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	format := strings.TrimSpace(d.Get("format").(string))
	if format != "jsonl" && format != "csv" {
		return nil, userErrorf("format must be jsonl or csv (got %q)", format)
	}
	q, err := parseInventoryQuery(d)
	if err != nil {
		return nil, err
	}
	q.tombstonesWanted = false
	page, err := b.inventoryPage(ctx, req.Storage, q)
	if err != nil {
		return nil, err
	}
	var body []byte
	contentType := "application/x-ndjson"
	if format == "csv" {
		contentType = "text/csv; charset=utf-8"
		body, err = exportCSV(page)
	} else {
		body, err = exportJSONL(page)
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: contentType,
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

// exportValue is one exported field as text (times RFC 3339 UTC to the
// second, empty when never set; scopes separated by spaces).
func exportValue(item map[string]interface{}, col string) string {
	switch v := item[col].(type) {
	case nil:
		return ""
	case string:
		return v
	case time.Time:
		if s, ok := renderTime(v).(string); ok {
			return s
		}
		return ""
	case []string:
		return strings.Join(v, " ")
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case record.Actor:
		if v.DisplayName != "" {
			return v.DisplayName
		}
		if v.EntityID != "" {
			return v.EntityID
		}
		return v.Type
	default:
		if a, ok := v.(interface{ String() string }); ok {
			return a.String()
		}
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}

func exportRecord(item map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(exportColumns))
	for _, col := range exportColumns {
		switch v := item[col].(type) {
		case time.Time:
			out[col] = renderTime(v)
		case nil:
			out[col] = nil
		default:
			out[col] = v
		}
	}
	return out
}

func exportJSONL(page inventoryPage) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, item := range page.items {
		if err := enc.Encode(exportRecord(item)); err != nil {
			return nil, err
		}
	}
	if page.next != "" {
		if err := enc.Encode(map[string]string{"next": page.next}); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func exportCSV(page inventoryPage) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(exportColumns); err != nil {
		return nil, err
	}
	row := make([]string, len(exportColumns))
	for _, item := range page.items {
		for i, col := range exportColumns {
			row[i] = exportValue(item, col)
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	if page.next != "" {
		// As wide as the other rows, so strict CSV readers take it.
		last := make([]string, len(exportColumns))
		last[0], last[1] = "#next", page.next
		if err := w.Write(last); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("writing csv: %w", err)
	}
	return buf.Bytes(), nil
}
