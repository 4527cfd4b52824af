package fuzz

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/vault/api"
)

// An operation is one method on one path of the mount, as Vault's OpenAPI
// document describes it. The fuzzer knows nothing about the mount's API
// beyond this, so a path or field added to the plugin is fuzzed without
// anyone listing it here.
type operation struct {
	Method   string // GET, LIST, POST or DELETE
	Template string // path below the mount, e.g. "keys/{client}/{name}/rotate"
	Params   []string
	Fields   map[string]fieldSpec
	// Names sorts Fields, so generation does not depend on map order.
	Names []string
}

func (o operation) String() string { return o.Method + " " + o.Template }

// fieldSpec is a request field's declared type.
type fieldSpec struct {
	Type   string // string, integer, number, boolean, array, object
	Format string // e.g. duration, seconds, kvpairs
	Items  string // element type of an array
}

var paramRe = regexp.MustCompile(`\{([^}]+)\}`)

// loadOperations reads the mount's OpenAPI document and returns its
// operations in a stable order. It is the mount-scoped form of Vault's
// document (GET /v1/<mount>/?help=1, the same generator as
// sys/internal/specs/openapi): Vault 1.13's merged document keeps an
// external plugin's paths but drops their request schemas, so it would
// hide every field.
func loadOperations(ctx context.Context, c *api.Client, mount string) ([]operation, error) {
	r := c.NewRequest("GET", "/v1/"+mount+"/")
	r.Params.Set("help", "1")
	resp, err := c.RawRequestWithContext(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	defer resp.Body.Close()
	var help struct {
		OpenAPI struct {
			Paths      map[string]map[string]json.RawMessage `json:"paths"`
			Components struct {
				Schemas map[string]*schema `json:"schemas"`
			} `json:"components"`
		} `json:"openapi"`
	}
	if err := resp.DecodeJSON(&help); err != nil {
		return nil, err
	}
	doc := help.OpenAPI
	prefix := "/"
	var ops []operation
	for p, item := range doc.Paths {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		tmpl := strings.TrimPrefix(p, prefix)
		var params []string
		for _, m := range paramRe.FindAllStringSubmatch(tmpl, -1) {
			params = append(params, m[1])
		}
		for method, rawItem := range item {
			var ro rawOp
			if method != "get" && method != "post" && method != "delete" {
				continue
			}
			if err := json.Unmarshal(rawItem, &ro); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, p, err)
			}
			op := operation{Template: tmpl, Params: params, Fields: map[string]fieldSpec{}}
			switch method {
			case "get":
				op.Method = "GET"
				for _, prm := range ro.Parameters {
					if prm.In == "query" && prm.Name == "list" {
						op.Method = "LIST"
					} else if prm.In == "query" && prm.Schema != nil {
						op.Fields[prm.Name] = prm.Schema.spec()
					}
				}
			case "post":
				op.Method = "POST"
				if ro.RequestBody != nil {
					for _, mt := range ro.RequestBody.Content {
						s := mt.Schema
						if s != nil && s.Ref != "" {
							s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
						}
						if s != nil {
							for name, f := range s.Properties {
								op.Fields[name] = f.spec()
							}
						}
					}
				}
			case "delete":
				op.Method = "DELETE"
			default:
				continue
			}
			for name := range op.Fields {
				op.Names = append(op.Names, name)
			}
			sort.Strings(op.Names)
			ops = append(ops, op)
		}
	}
	// The document declares a path's fields on its POST body only; the
	// same fields are read from the query string of its other methods.
	posted := map[string]operation{}
	for _, op := range ops {
		if op.Method == "POST" {
			posted[op.Template] = op
		}
	}
	for i, op := range ops {
		if p, ok := posted[op.Template]; ok && len(op.Fields) == 0 {
			ops[i].Fields, ops[i].Names = p.Fields, p.Names
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	if len(ops) == 0 {
		return nil, fmt.Errorf("the OpenAPI document lists no path under %s", prefix)
	}
	return ops, nil
}

type rawOp struct {
	Parameters []struct {
		Name   string  `json:"name"`
		In     string  `json:"in"`
		Schema *schema `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Items      *schema            `json:"items"`
	Properties map[string]*schema `json:"properties"`
}

func (s *schema) spec() fieldSpec {
	f := fieldSpec{Type: s.Type, Format: s.Format}
	if s.Items != nil {
		f.Items = s.Items.Type
	}
	return f
}
