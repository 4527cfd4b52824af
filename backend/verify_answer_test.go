package backend

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The role decides what of owner and metadata a gateway sees: nothing by
// default; both forms answer alike.
func TestVerifyAnswerResponseFields(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.UpdateOperation, "clients/svc", map[string]interface{}{"metadata": "tier=gold"})
	key := e.issue("svc", "k", "r", map[string]interface{}{"metadata": "app=shop", "purpose": "checkout"})
	d := e.verify(key, nil)
	for _, f := range []string{"owner", "client_metadata", "key_metadata", "purpose", "rate_limit"} {
		if _, ok := d[f]; ok {
			t.Fatalf("%s answered by default: %v", f, d)
		}
	}
	e.userErr(logical.UpdateOperation, "roles/r", map[string]interface{}{"verify_response_fields": "owner,secret"}, "verify_response_fields")
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"verify_response_fields": "owner,client_metadata,key_metadata,purpose"})
	d = e.verify(key, nil)
	if d["owner"] == "" || d["purpose"] != "checkout" ||
		!reflect.DeepEqual(d["key_metadata"], map[string]string{"app": "shop"}) ||
		!reflect.DeepEqual(d["client_metadata"], map[string]string{"tier": "gold"}) {
		t.Fatalf("listed fields: %v", d)
	}
	got := e.verifyGetData(key, nil)
	want := jsonShape(t, d)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GET %v differs from POST %v", got, want)
	}
}

// The document written by hand says what encoding/json says, extras too.
func TestVerifyAnswerDocumentMatchesJSON(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	key := &record.Key{KeyID: "kid_1", Client: "svc", Role: "r", Environment: "prod", Owner: "o\"x", Purpose: "p", Metadata: map[string]string{"b": "2", "a": "1"}}
	ver := &record.KeyVersion{Version: 1, State: record.StateActive, CreatedAt: now}
	role := &record.Role{VerifyResponseFields: record.VerifyResponseFieldNames}
	for name, res := range map[string]record.VerifyResult{
		"all":          {Active: true, Key: key, Version: ver, Role: role, Client: &record.Client{}, Rate: record.RateState{Limit: 5, Remaining: 4, Reset: now.Add(1500 * time.Millisecond)}},
		"rate_limited": {Code: record.CodeRateLimited, RetryAfter: 10 * time.Second},
	} {
		var got, want map[string]interface{}
		if err := json.Unmarshal(appendAnswer(nil, res, now), &got); err != nil {
			t.Fatal(name, err)
		}
		ref, _ := json.Marshal(verifyAnswerData(res, now))
		_ = json.Unmarshal(ref, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
	}
}

// A role that names audiences needs one on verify unless the mount relaxes it.
func TestVerifyAnswerAudienceRequired(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api"})
	e.setupClientRole("other", "internal", "open", nil)
	key := e.issue("svc", "k", "r", nil)
	open := e.issue("other", "k", "open", nil)
	if c := e.verifyCode(key, nil); c != record.CodeForbiddenAudience {
		t.Fatalf("no audience: %q", c)
	}
	if c := e.verifyCode(key, map[string]interface{}{"audience": "orders-api"}); c != "" {
		t.Fatalf("own audience: %q", c)
	}
	if c := e.verifyCode(open, nil); c != "" {
		t.Fatalf("role without audiences: %q", c)
	}
	if d := e.ok(logical.UpdateOperation, "config", map[string]interface{}{"verify_audience_optional": true}).Data; d["verify_audience_optional"] != true {
		t.Fatalf("config: %v", d)
	}
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("no audience, relaxed: %q", c)
	}
	if c := e.verifyCode(key, map[string]interface{}{"audience": "billing-api"}); c != record.CodeForbiddenAudience {
		t.Fatalf("other audience, relaxed: %q", c)
	}
}
