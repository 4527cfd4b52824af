package incident

import (
	"fmt"
	"testing"
	"time"
)

// kcLogOf returns the details of the lifecycle-log entries of type typ
// for key_id keyID, oldest first.
func kcLogOf(t *testing.T, mount, typ, keyID string) []map[string]interface{} {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(mount+"/log", map[string][]string{"after": {"0"}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]interface{}
	for _, raw := range s.Data["entries"].([]interface{}) {
		e := raw.(map[string]interface{})
		if e["type"] == typ && e["key_id"] == keyID {
			d, _ := e["details"].(map[string]interface{})
			out = append(out, d)
		}
	}
	return out
}

// kcKeyID reads the key_id of keys/<c>/<name>.
func kcKeyID(t *testing.T, mount, c, name string) string {
	t.Helper()
	return read(t, fmt.Sprintf("%s/keys/%s/%s", mount, c, name)).Data["key_id"].(string)
}

func TestKeyControlsDisableEnable(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", nil)
	key := issue(t, m, "svc", "k", "r")
	id := kcKeyID(t, m, "svc", "k")
	p := m + "/keys/svc/k"

	_, err := client(t).Logical().Write(p+"/disable", nil)
	expectStatus(t, err, 400, "reason")
	s := write(t, p+"/disable", map[string]interface{}{"reason": "INC-7"})
	if s.Data["state"] != "disabled" || s.Data["disabled"] != true || s.Data["disabled_reason"] != "INC-7" {
		t.Fatalf("disable answer = %v", s.Data)
	}
	if got := verifyCode(t, m, key, nil); got != "disabled" {
		t.Fatalf("verify of a disabled key = %q", got)
	}
	if r := read(t, p); r.Data["state"] != "disabled" || r.Data["disabled_at"] == nil {
		t.Fatalf("read of a disabled key = %v", r.Data)
	}
	// Repeating changes nothing and logs nothing.
	if s := write(t, p+"/disable", map[string]interface{}{"reason": "again"}); len(s.Warnings) == 0 || s.Data["disabled_reason"] != "INC-7" {
		t.Fatalf("repeated disable = %v %v", s.Warnings, s.Data)
	}
	// vault write -f: enable needs no field.
	s = write(t, p+"/enable", nil)
	if s.Data["state"] != "active" {
		t.Fatalf("enable answer = %v", s.Data)
	}
	if got := verifyCode(t, m, key, nil); got != "active" {
		t.Fatalf("verify after enable = %q", got)
	}
	if d := kcLogOf(t, m, "key.disabled", id); len(d) != 1 || d[0]["reason"] != "INC-7" {
		t.Fatalf("key.disabled entries = %v", d)
	}
	if d := kcLogOf(t, m, "key.enabled", id); len(d) != 1 || d[0]["disabled_reason"] != "INC-7" {
		t.Fatalf("key.enabled entries = %v", d)
	}
	_, err = client(t).Logical().Write(m+"/keys/svc/none/disable", map[string]interface{}{"reason": "x"})
	expectStatus(t, err, 400, "does not exist")
	_, err = client(t).Logical().Write(p+"/disable", map[string]interface{}{"reason": "x", "bogus": "1"})
	expectStatus(t, err, 400, "bogus")
	write(t, p+"/revoke", map[string]interface{}{"reason": "done"})
	_, err = client(t).Logical().Write(p+"/enable", nil)
	expectStatus(t, err, 400, "revoked")
}

func TestKeyControlsExpiry(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", nil)
	key := issue(t, m, "svc", "k", "r")
	id := kcKeyID(t, m, "svc", "k")
	p := m + "/keys/svc/k"

	_, err := client(t).Logical().Write(p, map[string]interface{}{"expires_at": "next week"})
	expectStatus(t, err, 400, "expires_at")
	_, err = client(t).Logical().Write(p, map[string]interface{}{"expires_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	expectStatus(t, err, 400, "expires_at")

	far := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	s := write(t, p, map[string]interface{}{"expires_at": far.Format(time.RFC3339)})
	if s.Data["expires_at"] != far.Format(time.RFC3339) {
		t.Fatalf("expires_at = %v", s.Data["expires_at"])
	}
	farther := far.Add(24 * time.Hour)
	write(t, p, map[string]interface{}{"expires_at": farther.Format(time.RFC3339)})
	if got := verifyCode(t, m, key, nil); got != "active" {
		t.Fatalf("verify with a future expiry = %q", got)
	}
	// Shorten to a few seconds from now: verify says expired once it passes.
	soon := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	write(t, p, map[string]interface{}{"expires_at": soon.Format(time.RFC3339)})
	waitFor(t, 15*time.Second, "the shortened expiry", func() bool { return verifyCode(t, m, key, nil) == "expired" })

	d := kcLogOf(t, m, "key.updated", id)
	if len(d) != 3 || d[0]["before.expires_at"] != "none" || d[0]["after.expires_at"] != far.Format(time.RFC3339) ||
		d[1]["after.expires_at"] != farther.Format(time.RFC3339) || d[2]["after.expires_at"] != soon.Format(time.RFC3339) {
		t.Fatalf("key.updated entries = %v", d)
	}

	// Removing an expiry (on another key) with expires_at=none.
	key2 := issue(t, m, "svc", "k2", "r")
	write(t, m+"/keys/svc/k2", map[string]interface{}{"expires_at": far.Format(time.RFC3339)})
	if s := write(t, m+"/keys/svc/k2", map[string]interface{}{"expires_at": "none"}); s.Data["expires_at"] != nil {
		t.Fatalf("expires_at after none = %v", s.Data["expires_at"])
	}
	if got := verifyCode(t, m, key2, nil); got != "active" {
		t.Fatalf("verify without expiry = %q", got)
	}
	write(t, m+"/keys/svc/k2/revoke", nil)
	_, err = client(t).Logical().Write(m+"/keys/svc/k2", map[string]interface{}{"expires_at": far.Format(time.RFC3339)})
	expectStatus(t, err, 400, "revoked")
}

func TestKeyControlsNarrowScopes(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{"scopes": "orders:read,orders:write"})
	key := issue(t, m, "svc", "k", "r")
	id := kcKeyID(t, m, "svc", "k")
	p := m + "/keys/svc/k"
	if got := verifyCode(t, m, key, map[string]interface{}{"scope": "orders:write"}); got != "active" {
		t.Fatalf("verify before narrowing = %q", got)
	}
	write(t, p, map[string]interface{}{"scopes": "orders:read"})
	if got := verifyCode(t, m, key, map[string]interface{}{"scope": "orders:write"}); got != "forbidden_scope" {
		t.Fatalf("verify of a narrowed-away scope = %q", got)
	}
	if got := verifyCode(t, m, key, map[string]interface{}{"scope": "orders:read"}); got != "active" {
		t.Fatalf("verify of a kept scope = %q", got)
	}
	_, err := client(t).Logical().Write(p, map[string]interface{}{"scopes": "orders:read,admin:all"})
	expectStatus(t, err, 400, "scopes")
	d := kcLogOf(t, m, "key.updated", id)
	if len(d) != 1 || d[0]["before.scopes"] != "orders:read orders:write" || d[0]["after.scopes"] != "orders:read" {
		t.Fatalf("key.updated entries = %v", d)
	}
	// Purpose and metadata are logged too.
	write(t, p, map[string]interface{}{"purpose": "checkout", "metadata": "team=pay"})
	d = kcLogOf(t, m, "key.updated", id)
	if len(d) != 2 || d[1]["after.purpose"] != "checkout" || d[1]["after.metadata"] != "team=pay" || d[1]["before.purpose"] != "" {
		t.Fatalf("key.updated entries = %v", d)
	}
}

func TestKeyControlsReissue(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", nil)
	oldKey := issue(t, m, "svc", "k", "r")
	oldID := kcKeyID(t, m, "svc", "k")
	p := m + "/keys/svc/k"

	write(t, p+"/revoke", map[string]interface{}{"reason": "leaked"})
	_, err := client(t).Logical().Write(p+"/rotate", nil)
	expectStatus(t, err, 400, "re-issue")
	_, err = client(t).Logical().Write(p, map[string]interface{}{"purpose": "x", "scopes": "orders:read"})
	expectStatus(t, err, 400, "revoked")

	s := write(t, p, map[string]interface{}{"role": "r"})
	newKey, newID := s.Data["key"].(string), s.Data["key_id"].(string)
	if newID == oldID || newKey == oldKey {
		t.Fatalf("re-issue kept the old key: %v", s.Data)
	}
	if preds, _ := s.Data["predecessors"].([]interface{}); len(preds) != 1 || preds[0] != oldID {
		t.Fatalf("predecessors = %v", s.Data["predecessors"])
	}
	if got := verifyCode(t, m, oldKey, nil); got != "revoked" {
		t.Fatalf("old secret after re-issue = %q, want revoked", got)
	}
	if got := verifyCode(t, m, newKey, nil); got != "active" {
		t.Fatalf("new secret = %q", got)
	}
	if r := read(t, p); r.Data["key_id"] != newID || r.Data["key"] != newKey || r.Data["state"] != "active" {
		t.Fatalf("read after re-issue = %v", r.Data)
	}
	revs := read(t, m+"/clients/svc/revocations").Data
	if ids, _ := revs["revoked_key_ids"].([]interface{}); len(ids) != 1 || ids[0] != oldID {
		t.Fatalf("revocation list = %v", revs)
	}
	if d := kcLogOf(t, m, "key.reissued", newID); len(d) != 1 || d[0]["predecessor_key_id"] != oldID {
		t.Fatalf("key.reissued entries = %v", d)
	}
	// A live key's name is not re-issued.
	_, err = client(t).Logical().Write(p, map[string]interface{}{"role": "r"})
	expectStatus(t, err, 400, "role")
}
