package backend

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The hand-written document must say exactly what encoding/json says for
// the same answer.
func TestIntrospectionDocumentMatchesJSON(t *testing.T) {
	created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	key := &record.Key{KeyID: "kid_1", Client: "svc", Role: "r", Environment: "prod", ExpiresAt: created.Add(time.Hour)}
	active := &record.KeyVersion{Version: 3, State: record.StateActive, CreatedAt: created}
	previous := &record.KeyVersion{Version: 2, State: record.StatePrevious, CreatedAt: created, GraceEndsAt: created.Add(time.Minute)}
	odd := &record.Key{KeyID: "kid_\"2\\", Client: "a\x01b", Role: "ü-role", Environment: "x\xffy"}
	cases := map[string]record.VerifyResult{
		"inactive":           {Code: record.CodeForbiddenScope},
		"active":             {Active: true, Key: key, Version: active, Role: &record.Role{Audiences: []string{"orders-api", "billing"}}, EffectiveScopes: []string{"orders:read", "orders:write"}},
		"previous, no aud":   {Active: true, Key: key, Version: previous, Role: &record.Role{}, EffectiveScopes: nil},
		"no expiry":          {Active: true, Key: &record.Key{KeyID: "k", Client: "c", Role: "r", Environment: "e"}, Version: active, Role: &record.Role{}},
		"characters escaped": {Active: true, Key: odd, Version: active, Role: &record.Role{Audiences: []string{"q\"uote"}}},
	}
	for name, res := range cases {
		t.Run(name, func(t *testing.T) {
			var got, want map[string]interface{}
			doc := appendIntrospection(nil, res)
			if err := json.Unmarshal(doc, &got); err != nil {
				t.Fatalf("not JSON: %v: %s", err, doc)
			}
			ref, err := json.Marshal(verifyResponseData(res))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("document %s\nwant         %s", doc, ref)
			}
		})
	}
}

func BenchmarkIntrospectionDocument(b *testing.B) {
	res := record.VerifyResult{Active: true, Key: &record.Key{KeyID: "kid_0123456789abcdef01234567", Client: "svc", Role: "r", Environment: "prod"},
		Version: &record.KeyVersion{Version: 1, State: record.StateActive}, Role: &record.Role{Audiences: []string{"orders-api"}}, EffectiveScopes: []string{"orders:read"}}
	b.Run("hand", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = introspectionDocument(res, time.Time{})
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, _ = json.Marshal(verifyResponseData(res))
		}
	})
}
