package upgrade

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/hashicorp/vault/api"
)

// mount is where the previous release writes and the current build takes over.
const mount = "legacy"

// std is the plain role's definition; the others add to it.
func roleData(extra map[string]interface{}) map[string]interface{} {
	d := map[string]interface{}{"scopes": "orders:read,orders:write", "audiences": "orders-api", "environment": "prod"}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// legacyState is what the previous release left, recorded before the switch.
type legacyState struct {
	keys          map[string]string // label -> key plaintext
	answers       map[string]answer // label -> verify answer
	inventory     map[string]inventoryRow
	log           logHead
	metrics       map[string]interface{}
	alerts        map[string]string
	leaseID       string
	kid           string
	unusedID      string // an approval granted and not yet used
	alice         *user
	fastIssued    time.Time
	fastVersionAt string
}

// TestUpgradeFromPreviousRelease runs the previous release (previous_release)
// on a mount, uses every feature it had, switches the mount to the current
// build with `secrets tune -plugin-version` and a reload, and checks that
// nothing it stored broke: every key verifies as before, the inventory,
// alerts and metrics are the same, the lifecycle log stays valid and goes
// on from its old head, and rotation (manual and scheduled) continues.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	ctx := context.Background()
	s := vaulttest.Shared
	rel := previousRelease(t)
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	current, err := vaulttest.PluginVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	if current == rel.version {
		t.Fatalf("VERSION is %s, the previous release's: a release must register under a version of its own", current)
	}

	// Start already registered the current build under its VERSION (and
	// mounted it elsewhere); the previous release is added to the catalog
	// next to it, as its own executable.
	start := time.Now()
	oldBinary := vaulttest.PluginBinary + "-" + rel.version
	sum, err := vaulttest.BuildRelease(ctx, root, rel.commit, rel.version, s.PluginDir, oldBinary)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterVersion(ctx, oldBinary, sum, rel.version); err != nil {
		t.Fatal(err)
	}
	if err := s.MountVersion(ctx, mount, rel.version); err != nil {
		t.Fatal(err)
	}
	expectRunning(t, rel.version)
	t.Logf("%s (%s) built and mounted in %s", rel.version, rel.commit, time.Since(start).Round(time.Second))

	st := useLegacy(t)
	t.Logf("%s used and recorded (%d keys, %d metrics, %d log entries, %d alerts)",
		rel.version, len(st.keys), len(st.metrics), st.log.Entries, len(st.alerts))

	if err := s.SwitchVersion(ctx, mount, current); err != nil {
		t.Fatal(err)
	}
	expectRunning(t, current)

	checkStoredState(t, st)
	t.Logf("switched to %s: stored state reads the same", current)
	checkCarriesOn(t, st)
}

func expectRunning(t *testing.T, version string) {
	t.Helper()
	got, err := vaulttest.Shared.MountRunningVersion(context.Background(), mount)
	if err != nil {
		t.Fatal(err)
	}
	if got != version {
		t.Fatalf("mount %s runs plugin version %q, want %q", mount, got, version)
	}
}

// useLegacy drives the previous release through its own API (v0.1.0 calls
// the approval id request_id) and records what it answers.
func useLegacy(t *testing.T) *legacyState {
	t.Helper()
	m := mount
	st := &legacyState{keys: map[string]string{}}
	write(t, m+"/config", map[string]interface{}{"failed_verify_threshold": 5})
	write(t, m+"/clients/billing", map[string]interface{}{"owner": "team-payments", "type": "internal"})
	write(t, m+"/clients/frozen", map[string]interface{}{"owner": "team-frozen", "type": "internal"})
	write(t, m+"/clients/acme", map[string]interface{}{"owner": "team-partners", "type": "external"})
	write(t, m+"/roles/std", roleData(nil))
	write(t, m+"/roles/gated", roleData(map[string]interface{}{"requires_approval": true}))
	// The shortest rotation period v0.1.0 allows, so a tick after the
	// switch is due to rotate it.
	write(t, m+"/roles/fast", roleData(map[string]interface{}{"rotation_period": "1m", "grace_period": "10s", "max_grace_period": "20s"}))
	write(t, m+"/roles/partner", roleData(map[string]interface{}{
		"scopes": "orders:read", "allowed_client_types": "external", "ttl": "1h", "max_ttl": "24h",
	}))

	issue := func(path, role string) string {
		t.Helper()
		return write(t, m+"/keys/"+path, map[string]interface{}{"role": role}).Data["key"].(string)
	}
	st.keys["checkout"] = issue("billing/checkout", "std")
	st.keys["rotated.v1"] = issue("billing/rotated", "std")
	st.keys["rotated.v2"] = write(t, m+"/keys/billing/rotated/rotate", nil).Data["key"].(string)
	st.keys["staged.v1"] = issue("billing/staged", "std")
	st.keys["staged.v2"] = write(t, m+"/keys/billing/staged/rotate", map[string]interface{}{"stage": true}).Data["key"].(string)
	write(t, m+"/keys/billing/staged/promote", nil)
	st.keys["revoked"] = issue("billing/revoked", "std")
	write(t, m+"/keys/billing/revoked/revoke", map[string]interface{}{"reason": "upgrade test"})
	st.keys["leaked"] = issue("billing/leaked", "std")
	write(t, m+"/leaks", map[string]interface{}{"key": st.keys["leaked"], "reporter": "secret-scanner", "source": "upgrade test"})
	write(t, m+"/clients/billing/lock", map[string]interface{}{"reason": "INC-1"})
	write(t, m+"/clients/billing/unlock", nil)
	st.keys["frozen"] = issue("frozen/app", "std")
	write(t, m+"/clients/frozen/lock", map[string]interface{}{"reason": "INC-2"}) // stays locked over the switch

	creds := read(t, m+"/creds/acme/partner")
	if creds == nil || creds.LeaseID == "" {
		t.Fatalf("creds returned no lease: %#v", creds)
	}
	st.keys["leased"], st.leaseID = creds.Data["key"].(string), creds.LeaseID

	st.kid = str(write(t, m+"/token", map[string]interface{}{"key": st.keys["checkout"], "audience": "orders-api", "scope": "orders:read"}).Data["kid"])
	if st.kid == "" {
		t.Fatal("token exchange gave no kid")
	}

	// Separation of duties: alice requests, bob (another entity) approves.
	if err := client(t).Sys().EnableAuthWithOptions("userpass", &api.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	rules := fmt.Sprintf("path %q {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}\n", m+"/*")
	if err := client(t).Sys().PutPolicy("legacy-all", rules); err != nil {
		t.Fatal(err)
	}
	alice, bob := newUser(t, "alice", "legacy-all"), newUser(t, "bob", "legacy-all")
	st.alice = alice
	request := func(name string) string {
		t.Helper()
		r, err := alice.write(m+"/requests", map[string]interface{}{"client": "billing", "role": "gated", "name": name, "justification": "upgrade test"})
		if err != nil {
			t.Fatal(err)
		}
		id := str(r.Data["request_id"])
		if _, err := bob.write(m+"/requests/"+id+"/approve", nil); err != nil {
			t.Fatalf("approving %s: %v", id, err)
		}
		return id
	}
	used := request("main")
	k, err := alice.write(m+"/keys/billing/main", map[string]interface{}{"role": "gated", "request_id": used})
	if err != nil {
		t.Fatalf("issuing with an approval: %v", err)
	}
	st.keys["approved"] = k.Data["key"].(string)
	st.unusedID = request("later")

	// Guessing: more failed verifies than failed_verify_threshold.
	for i := 0; i < 8; i++ {
		write(t, m+"/verify", map[string]interface{}{"key": fmt.Sprintf("not-a-key-%d", i)})
	}

	// Issued last: its first scheduled rotation is a minute away, after the
	// records below and the switch.
	st.keys["fast"] = issue("billing/fast", "fast")
	st.fastIssued = time.Now()

	st.answers = map[string]answer{}
	for label, key := range st.keys {
		if label != "fast" {
			st.answers[label] = verify(t, m, key)
		}
	}
	// Reading alerts stores what verify detected (alerts and verify counts)
	// since the last tick; v0.1.0 keeps it in memory until then and loses
	// it when the mount stops, so it is stored before the switch.
	st.alerts = alertIDs(t, m)
	types := map[string]bool{}
	for _, typ := range st.alerts {
		types[typ] = true
	}
	if !types["failed_verify_burst"] || !types["leak_reported"] {
		t.Fatalf("v0.1.0 raised %v, want failed_verify_burst and leak_reported among them", st.alerts)
	}
	st.inventory = inventory(t, m)
	st.log = verifyLog(t, m)
	st.metrics = metricsValues(t, m)
	st.fastVersionAt = str(read(t, m+"/keys/billing/fast").Data["version"])

	want := map[string]answer{
		"checkout": {Active: true, State: "active", Version: "1"}, "rotated.v1": {Active: true, State: "previous", Version: "1"},
		"rotated.v2": {Active: true, State: "active", Version: "2"}, "staged.v1": {Active: true, State: "previous", Version: "1"},
		"staged.v2": {Active: true, State: "active", Version: "2"}, "revoked": {Code: "revoked"}, "leaked": {Code: "revoked"},
		"frozen": {Code: "locked"}, "leased": {Active: true, State: "active", Version: "1"}, "approved": {Active: true, State: "active", Version: "1"},
	}
	for label, w := range want {
		got := st.answers[label]
		got.KeyID = ""
		if got != w {
			t.Fatalf("v0.1.0 verify of %s: %+v, want %+v", label, got, w)
		}
	}
	return st
}

// checkStoredState compares what the current build reads from the
// previous release's storage with what the previous release answered.
func checkStoredState(t *testing.T, st *legacyState) {
	t.Helper()
	m := mount
	// Metrics first: nothing has been verified since the record.
	if d := metricsDiff(st.metrics, metricsValues(t, m)); len(d) != 0 {
		if time.Since(st.fastIssued) > 50*time.Second {
			t.Logf("the fast key may have rotated meanwhile (issued %s ago)", time.Since(st.fastIssued))
		}
		t.Fatalf("metrics differ after the upgrade:\n%s", strings.Join(d, "\n"))
	}
	for label, before := range st.answers {
		if after := verify(t, m, st.keys[label]); after != before {
			t.Errorf("verify of %s: %+v before the upgrade, %+v after", label, before, after)
		}
	}
	if inv := inventory(t, m); !reflect.DeepEqual(inv, st.inventory) {
		t.Errorf("inventory changed:\nbefore %v\nafter  %v", st.inventory, inv)
	}
	alerts := alertIDs(t, m)
	for id, typ := range st.alerts {
		if alerts[id] != typ {
			t.Errorf("alert %s (%s) raised by v0.1.0 is not listed after the upgrade: %v", id, typ, alerts)
		}
	}
	lg := verifyLog(t, m)
	if lg.Entries < st.log.Entries {
		t.Fatalf("log has %d entries after the upgrade, %d before", lg.Entries, st.log.Entries)
	}
	if h := str(logEntry(t, m, st.log.Entries)["hash"]); h != st.log.Head {
		t.Fatalf("log entry %d hashes to %s after the upgrade, its head was %s", st.log.Entries, h, st.log.Head)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkCarriesOn uses the upgraded mount: rotations, the approval granted
// under v0.1.0, the signing key, the lease and the lock all go on, and the
// lifecycle log grows from the old head.
func checkCarriesOn(t *testing.T, st *legacyState) {
	t.Helper()
	m := mount

	rotated := write(t, m+"/keys/billing/checkout/rotate", nil).Data["key"].(string)
	if a := verify(t, m, rotated); !a.Active || a.Version != "2" || a.KeyID != st.answers["checkout"].KeyID {
		t.Fatalf("key rotated by the new build: %+v", a)
	}
	if a := verify(t, m, st.keys["checkout"]); !a.Active || a.Version != "1" || a.State != "previous" {
		t.Fatalf("the version before the upgrade's rotation, in its grace: %+v", a)
	}

	// The approval granted and not used under v0.1.0 is usable once, under
	// the name the current build gives it.
	k, err := st.alice.write(m+"/keys/billing/later", map[string]interface{}{"role": "gated", "approval_id": st.unusedID})
	if err != nil {
		t.Fatalf("issuing with the approval granted under v0.1.0: %v", err)
	}
	if a := verify(t, m, k.Data["key"].(string)); !a.Active {
		t.Fatalf("key issued with the v0.1.0 approval: %+v", a)
	}
	if r := read(t, m+"/requests/"+st.unusedID); str(r.Data["state"]) != "used" {
		t.Fatalf("the v0.1.0 approval after its use: %v", r.Data)
	}
	_, err = st.alice.write(m+"/keys/billing/again", map[string]interface{}{"role": "gated", "approval_id": st.unusedID})
	vaulttest.ExpectStatus(t, err, 400, "")

	tok := write(t, m+"/token", map[string]interface{}{"key": rotated, "audience": "orders-api", "scope": "orders:read"})
	if kid := str(tok.Data["kid"]); kid != st.kid {
		t.Fatalf("token signed with kid %q after the upgrade, %q before: the signing key was not kept", kid, st.kid)
	}

	// The lease issued by v0.1.0 is revoked by the current build.
	if err := client(t).Sys().RevokeWithContext(context.Background(), st.leaseID); err != nil {
		t.Fatalf("revoking the lease issued by v0.1.0: %v", err)
	}
	if a := verify(t, m, st.keys["leased"]); a.Active || a.Code != "revoked" {
		t.Fatalf("leased key after its lease was revoked: %+v", a)
	}
	write(t, m+"/clients/frozen/unlock", nil)
	if a := verify(t, m, st.keys["frozen"]); !a.Active {
		t.Fatalf("key locked under v0.1.0, after unlock: %+v", a)
	}

	lg := verifyLog(t, m)
	if lg.Entries <= st.log.Entries {
		t.Fatalf("log did not grow after the upgrade: %d entries, %d before", lg.Entries, st.log.Entries)
	}
	if prev := str(logEntry(t, m, st.log.Entries+1)["prev"]); prev != st.log.Head {
		t.Fatalf("the first entry after v0.1.0's head links to %s, not to the head %s", prev, st.log.Head)
	}

	// A tick of the current build rotates the key v0.1.0 scheduled.
	deadline := time.Now().Add(150 * time.Second)
	for {
		v := str(read(t, m+"/keys/billing/fast").Data["version"])
		if v != st.fastVersionAt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key scheduled by v0.1.0 to rotate every minute is still at version %s", v)
		}
		time.Sleep(2 * time.Second) // polling a background effect of real Vault
	}
	t.Logf("scheduled rotation by the current build %s after the key's issue", time.Since(st.fastIssued).Round(time.Second))
	verifyLog(t, m)
}
