package governance

import (
	"testing"
	"time"
)

// Turning a role's retrieval off and on again never brings back a secret
// that existed when it was turned off, and the next periodic tick drops the
// stored plaintext (logged as key.plaintext_dropped); only a version made
// after retrieval came back is read back.
func TestRetrievalOffDropsPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Vault's periodic function (up to ~2.5 minutes)")
	}
	t.Parallel()
	m := newMount(t)
	setup(t, m, "billing", "r", nil)
	old := issue(t, m, "billing", "main", "r")
	if s := read(t, m+"/keys/billing/main"); s.Data["key"] != old {
		t.Fatal("a retrievable key is not read back")
	}

	write(t, m+"/roles/r", map[string]interface{}{"retrievable": false})
	if s := read(t, m+"/keys/billing/main"); s.Data["key"] != nil {
		t.Fatal("a key read returned a secret with retrieval off")
	}
	role := write(t, m+"/roles/r", map[string]interface{}{"retrievable": true})
	if role.Data["retrieval_cutoff"] == nil {
		t.Fatalf("role after retrieval was turned off and on: %v", role.Data)
	}
	if s := read(t, m+"/keys/billing/main"); s.Data["key"] != nil {
		t.Fatal("retrievable=true brought back the secret that existed when retrieval was turned off")
	}

	deadline := time.Now().Add(150 * time.Second)
	for !dropped(t, m, "main") {
		if time.Now().After(deadline) {
			t.Fatal("no key.plaintext_dropped for the key after the periodic function had time to run")
		}
		time.Sleep(2 * time.Second) // polling a background effect of real Vault
	}
	if s := read(t, m+"/keys/billing/main"); s.Data["key"] != nil {
		t.Fatal("the dropped secret is read back")
	}
	if active, code := verify(t, m, old, nil); !active {
		t.Fatalf("dropping the plaintext broke verify: %s", code)
	}
	fresh := write(t, m+"/keys/billing/main/rotate", nil).Data["key"]
	if s := read(t, m+"/keys/billing/main"); s.Data["key"] != fresh {
		t.Fatal("a version made after retrieval came back is not read back")
	}
}

// dropped reports whether the log has a key.plaintext_dropped entry for
// billing/<name> that names version 1.
func dropped(t *testing.T, m, name string) bool {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.Data["entries"].([]interface{}) {
		ev := e.(map[string]interface{})
		if ev["type"] == "key.plaintext_dropped" && ev["key"] == name && ev["details"].(map[string]interface{})["versions"] == "1" {
			return true
		}
	}
	return false
}
