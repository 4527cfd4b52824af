package incident

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// opsIssueMany issues n keys of client c (names k0000...) from a few
// concurrent workers and returns their secrets in order.
func opsIssueMany(t *testing.T, mount, c, role string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := client(t)
			for i := w; i < n; i += 8 {
				sec, err := cl.Logical().Write(fmt.Sprintf("%s/keys/%s/k%04d", mount, c, i), map[string]interface{}{"role": role})
				if err != nil {
					errs <- err
					return
				}
				keys[i] = sec.Data["key"].(string)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return keys
}

// opsVerifyCodes verifies every key concurrently and counts the answers.
func opsVerifyCodes(t *testing.T, mount string, keys []string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := client(t)
			for i := w; i < len(keys); i += 8 {
				sec, err := cl.Logical().Write(mount+"/verify", map[string]interface{}{"key": keys[i]})
				if err != nil {
					errs <- err
					return
				}
				code, _ := sec.Data["code"].(string)
				if sec.Data["active"] == true {
					code = "active"
				}
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return counts
}

func opsStart(t *testing.T, mount string, data map[string]interface{}) string {
	t.Helper()
	sec := write(t, mount+"/operations", data)
	if sec.Data["state"] != "running" {
		t.Fatalf("operation not running: %v", sec.Data)
	}
	return sec.Data["id"].(string)
}

// opsWaitEnded waits for the operation to end and returns its record.
func opsWaitEnded(t *testing.T, mount, id string, within time.Duration) map[string]interface{} {
	t.Helper()
	var data map[string]interface{}
	waitFor(t, within, "operation "+id+" to end", func() bool {
		sec, err := client(t).Logical().Read(mount + "/operations/" + id)
		if err != nil || sec == nil {
			return false // the plugin restarting
		}
		data = sec.Data
		return data["state"] != "running"
	})
	return data
}

func TestOperationsEachActionBySelector(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	write(t, m+"/clients/beta", map[string]interface{}{"owner": "team-beta", "type": "internal"})
	acme := []string{issue(t, m, "acme", "a", "svc"), issue(t, m, "acme", "b", "svc")}
	beta := []string{issue(t, m, "beta", "a", "svc"), issue(t, m, "beta", "b", "svc")}

	// revoke by client: acme's keys are refused from the moment it is
	// accepted, beta's are not touched.
	id := opsStart(t, m, map[string]interface{}{"action": "revoke", "client": "acme", "reason": "INC-1 leak"})
	for _, k := range acme {
		if c := verifyCode(t, m, k, nil); c != "revoked" {
			t.Fatalf("acme key after the revoke was accepted: %s", c)
		}
	}
	op := opsWaitEnded(t, m, id, time.Minute)
	if op["state"] != "completed" || num(t, op["done"]) != 2 || num(t, op["matched"]) != 2 || num(t, op["failed"]) != 0 {
		t.Fatalf("revoke: %v", op)
	}
	key := read(t, m+"/keys/acme/a")
	versions := key.Data["versions"].([]interface{})
	if key.Data["state"] != "revoked" || versions[0].(map[string]interface{})["revoke_reason"] != "INC-1 leak" {
		t.Fatalf("acme/a after the revoke: %v", key.Data)
	}
	for _, k := range beta {
		if c := verifyCode(t, m, k, nil); c != "active" {
			t.Fatalf("beta key after a revoke of acme: %s", c)
		}
	}

	// rotate by role: beta's keys get a new version; the old one stays in
	// its grace.
	id = opsStart(t, m, map[string]interface{}{"action": "rotate", "role": "svc", "reason": "scheduled hygiene"})
	op = opsWaitEnded(t, m, id, time.Minute)
	if op["state"] != "completed" || num(t, op["done"]) != 2 {
		t.Fatalf("rotate: %v", op)
	}
	if v := num(t, read(t, m+"/keys/beta/a").Data["version"]); v != 2 {
		t.Fatalf("beta/a version after the rotate: %d", v)
	}

	// disable by client: refused from acceptance, reversible key by key,
	// with the count ahead of the work reported.
	id = opsStart(t, m, map[string]interface{}{"action": "disable", "client": "beta", "reason": "INC-2 triage"})
	for _, k := range beta {
		if c := verifyCode(t, m, k, nil); c != "disabled" {
			t.Fatalf("beta key after the disable was accepted: %s", c)
		}
	}
	op = opsWaitEnded(t, m, id, time.Minute)
	if op["state"] != "completed" || num(t, op["done"]) != 2 || num(t, op["total"]) != 2 || num(t, op["remaining"]) != 0 {
		t.Fatalf("disable: %v", op)
	}
	write(t, m+"/keys/beta/a/enable", nil)
	if c := verifyCode(t, m, beta[0], nil); c != "active" {
		t.Fatalf("beta/a after enable: %s", c)
	}
	if c := verifyCode(t, m, beta[1], nil); c != "disabled" {
		t.Fatalf("beta/b, still disabled: %s", c)
	}

	// lock by owner: beta is locked, so its keys answer locked.
	id = opsStart(t, m, map[string]interface{}{"action": "lock", "owner": "team-beta", "reason": "INC-2"})
	op = opsWaitEnded(t, m, id, time.Minute)
	if op["state"] != "completed" || num(t, op["done"]) != 2 {
		t.Fatalf("lock: %v", op)
	}
	if st := read(t, m+"/clients/beta").Data["status"]; st != "locked" {
		t.Fatalf("beta after the lock: %v", st)
	}
	// beta/b answers disabled still: a key's own state comes first.
	if c := verifyCode(t, m, beta[0], nil); c != "locked" {
		t.Fatalf("beta/a after the lock: %s", c)
	}

	list, err := client(t).Logical().List(m + "/operations")
	if err != nil || len(list.Data["keys"].([]interface{})) != 4 {
		t.Fatalf("list: %v %v", list, err)
	}
}

func TestOperationsBadInputAndEmptySelector(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	k := issue(t, m, "acme", "a", "svc")
	cl := client(t)
	_, err := cl.Logical().Write(m+"/operations", map[string]interface{}{"action": "revoke", "client": "acme"})
	expectStatus(t, err, 400, "reason")
	_, err = cl.Logical().Write(m+"/operations", map[string]interface{}{"action": "revoke", "client": "acme", "reason": "x", "clients": "acme"})
	expectStatus(t, err, 400, "clients")
	_, err = cl.Logical().Write(m+"/operations", map[string]interface{}{"action": "revoke", "reason": "x"})
	expectStatus(t, err, 400, "selector")
	_, err = cl.Logical().Write(m+"/operations", map[string]interface{}{"action": "nuke", "client": "acme", "reason": "x"})
	expectStatus(t, err, 400, "action")
	_, err = cl.Logical().Write(m+"/operations", map[string]interface{}{"action": "revoke", "issued_after": "last week", "reason": "x"})
	expectStatus(t, err, 400, "issued_after")
	_, err = cl.Logical().Write(m+"/operations/nope/cancel", nil)
	expectStatus(t, err, 400, "does not exist")

	// A selector that matches nothing is not an error: it completes.
	id := opsStart(t, m, map[string]interface{}{"action": "revoke", "environment": "staging", "reason": "drill"})
	op := opsWaitEnded(t, m, id, time.Minute)
	if op["state"] != "completed" || num(t, op["matched"]) != 0 {
		t.Fatalf("empty selector: %v", op)
	}
	if c := verifyCode(t, m, k, nil); c != "active" {
		t.Fatalf("key after an operation that matched nothing: %s", c)
	}
}

func TestOperationsDryRun(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	write(t, m+"/clients/beta", map[string]interface{}{"owner": "team-beta", "type": "internal"})
	keys := []string{issue(t, m, "acme", "a", "svc"), issue(t, m, "acme", "b", "svc"), issue(t, m, "beta", "a", "svc")}
	sec := write(t, m+"/operations", map[string]interface{}{"action": "revoke", "scope": "orders:read", "reason": "what if", "dry_run": true})
	if sec.Data["complete"] != true || num(t, sec.Data["matched"]) != 3 || len(sec.Data["keys"].([]interface{})) != 3 {
		t.Fatalf("dry run: %v", sec.Data)
	}
	perClient := sec.Data["clients"].(map[string]interface{})
	if num(t, perClient["acme"]) != 2 || num(t, perClient["beta"]) != 1 {
		t.Fatalf("per client: %v", perClient)
	}
	if list, _ := client(t).Logical().List(m + "/operations"); list != nil {
		t.Fatalf("a dry run stored an operation: %v", list.Data)
	}
	if got := opsVerifyCodes(t, m, keys); got["active"] != 3 {
		t.Fatalf("after a dry run: %v", got)
	}
}

func TestOperationsCancel(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	keys := opsIssueMany(t, m, "acme", "svc", 1000)
	id := opsStart(t, m, map[string]interface{}{"action": "revoke", "client": "acme", "reason": "INC-3"})
	sec := write(t, m+"/operations/"+id+"/cancel", nil)
	if sec.Data["state"] != "cancelled" {
		t.Fatalf("cancel: %v", sec.Data)
	}
	done := int(num(t, sec.Data["done"]))
	if done >= len(keys) {
		t.Fatalf("the operation finished (%d) before the cancel; the test needs more keys", done)
	}
	// Cancel stops at a step boundary, so done is exactly what was revoked;
	// the keys not reached verify again at once.
	got := opsVerifyCodes(t, m, keys)
	if got["revoked"] != done || got["active"] != len(keys)-done {
		t.Fatalf("after a cancel at done=%d: %v", done, got)
	}
	if op := read(t, m+"/operations/"+id).Data; op["state"] != "cancelled" || int(num(t, op["done"])) != done {
		t.Fatalf("after the cancel: %v", op)
	}
}

// The plugin process is killed while a revoke of 2,000 keys runs: once
// Vault starts it again the operation resumes where its last stored step
// ended and finishes, counting every key once, and no key of the selector
// verifies (every one is checked); keys outside it still do.
func TestOperationsResumeAfterPluginKill(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "crash", "internal", "svc", nil)
	write(t, m+"/clients/keep", map[string]interface{}{"owner": "team-keep", "type": "internal"})
	keys := opsIssueMany(t, m, "crash", "svc", 2000)
	kept := opsIssueMany(t, m, "keep", "svc", 20)
	id := opsStart(t, m, map[string]interface{}{"action": "revoke", "client": "crash", "reason": "INC-4 mass leak"})
	var before map[string]interface{}
	waitFor(t, 2*time.Minute, "the first stored step", func() bool {
		before = read(t, m+"/operations/"+id).Data
		return num(t, before["done"]) > 0
	})
	if before["state"] != "running" {
		t.Fatalf("the operation ended before the kill; the test needs more keys: %v", before)
	}
	if _, err := vaulttest.Shared.KillPlugin(); err != nil {
		t.Fatal(err)
	}
	op := opsWaitEnded(t, m, id, 3*time.Minute)
	if op["state"] != "completed" || num(t, op["done"]) != 2000 || num(t, op["matched"]) != 2000 || num(t, op["failed"]) != 0 {
		t.Fatalf("after the kill (done %v before it): %v", before["done"], op)
	}
	if got := opsVerifyCodes(t, m, keys); got["revoked"] != len(keys) {
		t.Fatalf("keys of the selector after done: %v", got)
	}
	if got := opsVerifyCodes(t, m, kept); got["active"] != len(kept) {
		t.Fatalf("keys outside the selector: %v", got)
	}
	t.Logf("killed at done=%v of 2000; resumed and completed", before["done"])
}
