package backend

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// storedHMACSecretBytes returns the raw stored HMAC secret entry.
func (e *testEnv) storedHMACSecretBytes() []byte {
	e.t.Helper()
	entry, err := e.storage.Get(e.ctx, storageHMACSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	if entry == nil {
		return nil
	}
	return entry.Value
}

func TestHMACSecretCreatedOnFirstUseAndKept(t *testing.T) {
	e := newTestEnv(t)
	if e.storedHMACSecretBytes() != nil {
		t.Fatal("a fresh mount already has an HMAC secret")
	}
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	stored := e.storedHMACSecretBytes()
	secret, err := e.b.hmacSecret(e.ctx, e.storage)
	if err != nil || len(secret) != hmacSecretBytes || stored == nil {
		t.Fatalf("secret %d bytes, %v, stored %v", len(secret), err, stored != nil)
	}
	// A restarted backend reads the same secret: the key still verifies.
	e.restart()
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("verify after restart = %q", c)
	}
	if !bytes.Equal(e.storedHMACSecretBytes(), stored) {
		t.Fatal("the stored HMAC secret changed")
	}
}

// A stored secret that is corrupt is an error, never silently replaced by
// a new one: that would invalidate every key of the mount.
func TestCorruptStoredHMACSecretFailsLoudlyAndIsKept(t *testing.T) {
	cases := []struct {
		name  string
		value string
		want  string
	}{
		{"wrong length", `{"secret":"AAECAwQFBgcICQoLDA0ODw=="}`, "is 16 bytes, want 32"},
		{"no secret", `{}`, "is 0 bytes, want 32"},
		{"not JSON", `garbage`, "decoding the stored HMAC secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.setupClientRole("svc", "internal", "r", nil)
			key := e.issue("svc", "k", "r", nil)
			if err := e.storage.Put(e.ctx, &logical.StorageEntry{Key: storageHMACSecret, Value: []byte(tc.value)}); err != nil {
				t.Fatal(err)
			}
			e.restart() // a new process reads the secret from storage

			for _, req := range []struct {
				op   logical.Operation
				path string
				data map[string]interface{}
			}{
				{logical.UpdateOperation, "verify", map[string]interface{}{"key": key}},
				{logical.CreateOperation, "keys/svc/k2", map[string]interface{}{"role": "r"}},
			} {
				resp, err := e.doErr(req.op, req.path, req.data)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not replaced") {
					t.Fatalf("%s with a corrupt HMAC secret: resp %v, err %v", req.path, resp, err)
				}
			}
			if got := string(e.storedHMACSecretBytes()); got != tc.value {
				t.Fatalf("the corrupt HMAC secret was overwritten with %q", got)
			}
		})
	}
}
