package fuzz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
)

// httpc sends requests exactly as built: no retries, no redirects followed
// (a redirect is an answer like any other).
var httpc = &http.Client{
	Timeout: 60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// answer is what Vault said to one request.
type answer struct {
	status   int
	data     map[string]interface{}
	errors   []string
	warnings []string
}

func (a answer) errorText() string { return strings.Join(a.errors, "; ") }

// send performs method on the mount path p (already escaped) with token.
func send(addr, token, method, mount, p string, query map[string]string, body []byte, apiKey *string) (answer, error) {
	u := addr + "/v1/" + mount + "/" + p
	q := url.Values{}
	for k, v := range query {
		q.Set(k, v)
	}
	if method == "LIST" {
		q.Set("list", "true")
		method = "GET"
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		// A path the client library cannot even express is not sent.
		return answer{}, errUnsendable{err}
	}
	req.Header.Set("X-Vault-Token", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if apiKey != nil {
		req.Header["X-Api-Key"] = []string{*apiKey}
	}
	resp, err := httpc.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "invalid header field value") {
			return answer{}, errUnsendable{err}
		}
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode}
	var doc struct {
		Data     map[string]interface{} `json:"data"`
		Errors   []string               `json:"errors"`
		Warnings []string               `json:"warnings"`
	}
	if len(raw) > 0 && json.Unmarshal(raw, &doc) == nil {
		a.data, a.errors, a.warnings = doc.Data, doc.Errors, doc.Warnings
	} else if len(raw) > 0 && a.status >= 400 {
		a.errors = []string{strings.TrimSpace(string(raw))}
	}
	return a, nil
}

// errUnsendable marks a request Go's HTTP client refuses to send (e.g. a
// header with a control character): it never reached Vault.
type errUnsendable struct{ error }

// volatile fields change without any write: time left, usage recorded by
// verifies, and timestamps of the last use.
var volatile = map[string]bool{"ttl": true, "usage": true, "last_used_at": true, "last_verified_at": true}

// stable drops the volatile fields, recursively.
func stable(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, e := range x {
			if !volatile[k] {
				out[k] = stable(e)
			}
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = stable(e)
		}
		return out
	}
	return v
}

// snapshot is how an object read at one moment: its status and stable data.
type snapshot struct {
	status int
	data   interface{}
}

func (s snapshot) equal(o snapshot) bool {
	return s.status == o.status && reflect.DeepEqual(s.data, o.data)
}

// diff names the top-level fields that differ, for a report.
func (s snapshot) diff(o snapshot) string {
	if s.status != o.status {
		return fmt.Sprintf("status %d -> %d", s.status, o.status)
	}
	a, _ := s.data.(map[string]interface{})
	b, _ := o.data.(map[string]interface{})
	var out []string
	for k := range a {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, fmt.Sprintf("%s: %.80v -> %.80v", k, a[k], b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: added %.80v", k, b[k]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
