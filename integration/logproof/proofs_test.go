package logproof

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// auditor holds what an auditor keeps: the verifier key and files.
type auditor struct {
	t *testing.T
	// size is the size of the checkpoint kept.
	size int
	bin  string
	dir  string
	key  string
}

func newAuditor(t *testing.T, bin, mount string) *auditor {
	a := &auditor{t: t, bin: bin, dir: t.TempDir()}
	a.key = read(t, mount+"/log/checkpoint").Data["verifier_key"].(string)
	return a
}

// save writes content to a file of the auditor's and returns its path.
func (a *auditor) save(name, content string) string {
	a.t.Helper()
	p := filepath.Join(a.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return p
}

// saveJSON keeps an API answer as the vault CLI's -format=json prints it.
func (a *auditor) saveJSON(name string, data map[string]interface{}) string {
	a.t.Helper()
	b, err := json.Marshal(map[string]interface{}{"data": data})
	if err != nil {
		a.t.Fatal(err)
	}
	return a.save(name, string(b))
}

// check runs the offline verifier and returns whether it passed and what
// it said.
func (a *auditor) check(args ...string) (bool, string) {
	a.t.Helper()
	out, err := exec.Command(a.bin, append([]string{"-key", a.key}, args...)...).CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		a.t.Fatal(err)
	}
	return err == nil, string(out)
}

func (a *auditor) mustPass(args ...string) {
	a.t.Helper()
	if ok, out := a.check(args...); !ok {
		a.t.Fatalf("log-verify %v failed: %s", args, out)
	}
}

func (a *auditor) mustFail(want string, args ...string) {
	a.t.Helper()
	ok, out := a.check(args...)
	if ok || !strings.Contains(out, want) {
		a.t.Fatalf("log-verify %v: passed=%v, output %q, want a failure saying %q", args, ok, out, want)
	}
}

// populate writes a client, a role and n keys: 2+n log entries.
func populate(t *testing.T, m string, from, n int) {
	t.Helper()
	if from == 0 {
		write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-a"})
		write(t, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	}
	for i := from; i < from+n; i++ {
		write(t, fmt.Sprintf("%s/keys/svc/k%d", m, i), map[string]interface{}{"role": "r"})
	}
}

// checkpoint signs one now and returns the note and its size.
func checkpoint(t *testing.T, m string) (string, int) {
	t.Helper()
	d := write(t, m+"/log/checkpoint", nil).Data
	if num(t, d["pending"]) != 0 {
		t.Fatalf("checkpoint left entries pending: %v", d)
	}
	return d["checkpoint"].(string), int(num(t, d["size"]))
}

// export returns every kept entry as JSON lines, page by page.
func export(t *testing.T, m string, limit int) string {
	t.Helper()
	var all strings.Builder
	after := ""
	for {
		args := map[string][]string{"limit": {fmt.Sprint(limit)}}
		if after != "" {
			args["after"] = []string{after}
		}
		s, err := client(t).Logical().ReadWithData(m+"/log/export", args)
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(s.Data["entries"].(string))
		next, ok := s.Data["next_after"]
		if !ok {
			return all.String()
		}
		after = fmt.Sprint(next)
	}
}

func TestCheckpointsAndProofsCheckOffline(t *testing.T) {
	bin := verifierBinary(t)
	m := newMount(t)
	populate(t, m, 0, 5)
	cp1, size1 := checkpoint(t, m)
	a := newAuditor(t, bin, m)
	old := a.save("cp1.txt", cp1)
	a.mustPass("checkpoint", old)

	populate(t, m, 5, 8)
	cp2, size2 := checkpoint(t, m)
	if size2 <= size1 {
		t.Fatalf("second checkpoint of %d entries, first %d", size2, size1)
	}
	cur := a.save("cp2.txt", cp2)
	cons, err := client(t).Logical().ReadWithData(m+"/log/proof/consistency", map[string][]string{"from": {fmt.Sprint(size1)}})
	if err != nil {
		t.Fatal(err)
	}
	a.mustPass("consistency", old, cur, a.saveJSON("cons.json", cons.Data))
	for _, seq := range []int{1, size1, size2} {
		incl, err := client(t).Logical().ReadWithData(m+"/log/proof/inclusion", map[string][]string{"seq": {fmt.Sprint(seq)}})
		if err != nil {
			t.Fatal(err)
		}
		a.mustPass("inclusion", cur, a.saveJSON(fmt.Sprintf("incl%d.json", seq), incl.Data))
	}
	a.mustPass("entries", old+","+cur, a.save("all.jsonl", export(t, m, 4)))
	// Another mount's key does not verify these checkpoints.
	other := newMount(t)
	populate(t, other, 0, 1)
	checkpoint(t, other)
	b := newAuditor(t, bin, other)
	b.mustFail("failed to verify signatures", "checkpoint", old)
}

// tamper changes storage as someone holding it could, after the auditor
// kept a checkpoint; the verifier must then fail saying want.
func TestOfflineVerifierDetectsTampering(t *testing.T) {
	bin := verifierBinary(t)
	for _, tc := range []struct {
		name, want string
		tamper     func(t *testing.T, m string, a *auditor, kept string)
	}{
		{"altered entry", "do not match its hash", func(t *testing.T, m string, _ *auditor, _ string) {
			e := rawEntry(t, m, 4)
			e.Event = json.RawMessage(strings.Replace(string(e.Event), `"svc"`, `"svx"`, 1))
			putRaw(t, m, e)
		}},
		{"truncated", "short of a checkpoint", func(t *testing.T, m string, a *auditor, _ string) {
			head := rawEntry(t, m, a.size-3)
			for seq := a.size - 2; seq <= a.size; seq++ {
				if _, err := client(t).Logical().Delete(vaulttest.RawPath(t, m, entryKey(seq))); err != nil {
					t.Fatal(err)
				}
			}
			putRawHead(t, m, a.size-3, head.Hash)
		}},
		{"reordered", "missing or reordered", func(t *testing.T, m string, _ *auditor, _ string) {
			four, five := rawEntry(t, m, 4), rawEntry(t, m, 5)
			putRawAt(t, m, 4, five)
			putRawAt(t, m, 5, four)
		}},
		{"whole chain rewritten", "does not have the checkpoint's root", rewriteChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMount(t)
			populate(t, m, 0, 7)
			cp, size := checkpoint(t, m)
			a := newAuditor(t, bin, m)
			a.size = size
			kept := a.save("cp.txt", cp)
			a.mustPass("entries", kept, a.save("before.jsonl", export(t, m, 100)))
			tc.tamper(t, m, a, kept)
			a.mustFail(tc.want, "entries", kept, a.save("after.jsonl", export(t, m, 100)))
		})
	}
}

// rewriteChain rewrites entry 4 and every entry after it into a chain that
// is consistent again, moves the head, restarts the plugin, and lets the
// mount rebuild its tree and sign anew with its own key after two more
// entries: the mount's
// log/verify passes, and only the checkpoint the auditor kept shows the
// rewrite, by the root (checked by the caller) and by a consistency proof
// that no longer holds.
func rewriteChain(t *testing.T, m string, a *auditor, kept string) {
	prev := rawEntry(t, m, 3).Hash
	for seq := 4; seq <= a.size; seq++ {
		e := rawEntry(t, m, seq)
		if seq == 4 {
			e.Event = json.RawMessage(strings.Replace(string(e.Event), `"svc"`, `"svx"`, 1))
		}
		e.Prev = prev
		e.Hash = hashchain.Hash(uint64(seq), e.Prev, e.Event)
		putRaw(t, m, e)
		prev = e.Hash
	}
	putRawHead(t, m, a.size, prev)
	for _, key := range append([]string{"log/tree/state", "log/checkpoint/latest"}, prefixed("log/tree/hashes/", vaulttest.RawList(t, m, "log/tree/hashes/"))...) {
		if _, err := client(t).Logical().Delete(vaulttest.RawPath(t, m, key)); err != nil {
			t.Fatal(err)
		}
	}
	// The running plugin appends after the head it last wrote, which is no
	// longer the stored one: a rewrite behind its back breaks the chain at
	// the next append. Whoever rewrites storage restarts the plugin too.
	if _, err := client(t).Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{m}}); err != nil {
		t.Fatalf("reloading the plugin: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := client(t).Logical().Read(m + "/log/verify")
		if err == nil && v != nil {
			if v.Data["valid"] != true {
				t.Fatalf("the rewritten chain does not verify by itself: %v", v.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount did not answer after the reload: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling a running Vault, not timing
	}
	populate(t, m, 7, 2)
	cp, size := checkpoint(t, m)
	if size != a.size+2 {
		t.Fatalf("re-signed checkpoint of %d entries, want %d", size, a.size+2)
	}
	cur := a.save("rewritten.txt", cp)
	a.mustPass("checkpoint", cur) // signed with the mount's own key
	cons, err := client(t).Logical().ReadWithData(m+"/log/proof/consistency", map[string][]string{"from": {fmt.Sprint(a.size)}})
	if err != nil {
		t.Fatal(err)
	}
	a.mustFail(fmt.Sprintf("does not extend the checkpoint of %d", a.size), "consistency", kept, cur, a.saveJSON("cons.json", cons.Data))
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

type storedEntry struct {
	Seq   uint64          `json:"seq"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

func entryKey(seq int) string { return fmt.Sprintf("log/entries/%020d", seq) }

func rawEntry(t *testing.T, m string, seq int) storedEntry {
	t.Helper()
	s, err := client(t).Logical().Read(vaulttest.RawPath(t, m, entryKey(seq)))
	if err != nil || s == nil {
		t.Fatalf("raw entry %d: %v", seq, err)
	}
	var e storedEntry
	if err := json.Unmarshal([]byte(s.Data["value"].(string)), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// putRaw stores e at the position its Seq names.
func putRaw(t *testing.T, m string, e storedEntry) {
	t.Helper()
	putRawAt(t, m, int(e.Seq), e)
}

// putRawAt stores e at position seq.
func putRawAt(t *testing.T, m string, seq int, e storedEntry) {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t).Logical().Write(vaulttest.RawPath(t, m, entryKey(seq)), map[string]interface{}{"value": string(b)}); err != nil {
		t.Fatal(err)
	}
}

func putRawHead(t *testing.T, m string, seq int, hash string) {
	t.Helper()
	b, _ := json.Marshal(map[string]interface{}{"seq": seq, "hash": hash})
	if _, err := client(t).Logical().Write(vaulttest.RawPath(t, m, "log/head"), map[string]interface{}{"value": string(b)}); err != nil {
		t.Fatal(err)
	}
}
