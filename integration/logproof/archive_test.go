package logproof

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// TestArchivalRoundTrip archives the entries a checkpoint covers once they
// pass the retention, lets the periodic function remove them, and checks
// the archive plus what is kept against every checkpoint issued.
func TestArchivalRoundTrip(t *testing.T) {
	bin := verifierBinary(t)
	m := newMount(t)
	write(t, m+"/log/config", map[string]interface{}{"retention": "1m"})
	populate(t, m, 0, 6)
	cp1, size1 := checkpoint(t, m)
	a := newAuditor(t, bin, m)
	first := a.save("cp1.txt", cp1)
	archive := export(t, m, 5)
	lines := strings.Split(strings.TrimSpace(archive), "\n")
	if len(lines) != size1 {
		t.Fatalf("export of %d entries, checkpoint of %d: %s", len(lines), size1, archive)
	}
	var last storedEntry
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	archiveFile := a.save("archive.jsonl", archive)

	// Within the retention the archival is refused.
	_, err := client(t).Logical().Write(m+"/log/archive", map[string]interface{}{"through": size1, "through_hash": last.Hash})
	vaulttest.ExpectStatus(t, err, 400, "within the retention")

	populate(t, m, 6, 3)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		_, err = client(t).Logical().Write(m+"/log/archive", map[string]interface{}{"through": size1, "through_hash": last.Hash})
		if err == nil || !strings.Contains(err.Error(), "within the retention") || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Fatalf("archive after the retention: %v", err)
	}
	// The periodic function removes the archived entries.
	vaulttest.WaitFor(t, 3*time.Minute, "archived entries removed", func() bool {
		names := vaulttest.RawList(t, m, "log/entries/")
		return len(names) > 0 && names[0] == fmt.Sprintf("%020d", size1+1)
	})
	if v := read(t, m+"/log/verify").Data; v["valid"] != true || v["complete"] != true || num(t, v["archived_through"]) != int64(size1) {
		t.Fatalf("log/verify after archival: %v", v)
	}
	cp2, size2 := checkpoint(t, m)
	second := a.save("cp2.txt", cp2)
	kept := export(t, m, 100)
	if !strings.HasPrefix(kept, fmt.Sprintf(`{"seq":%d,`, size1+1)) {
		t.Fatalf("kept entries start with %.40q", kept)
	}
	a.mustPass("entries", first+","+second, archiveFile, a.save("kept.jsonl", kept))
	// Without the archive, what is kept alone cannot be checked from the start.
	a.mustFail("expected entry 1", "entries", second, a.save("kept-only.jsonl", kept))
	// Proofs go on working for archived entries.
	cons, err := client(t).Logical().ReadWithData(m+"/log/proof/consistency", map[string][]string{"from": {fmt.Sprint(size1)}, "to": {fmt.Sprint(size2)}})
	if err != nil {
		t.Fatal(err)
	}
	a.mustPass("consistency", first, second, a.saveJSON("cons.json", cons.Data))
	incl, err := client(t).Logical().ReadWithData(m+"/log/proof/inclusion", map[string][]string{"seq": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, has := incl.Data["entry"]; has || len(incl.Data["proof"].([]interface{})) == 0 {
		t.Fatalf("inclusion proof of an archived entry: %v", incl.Data)
	}
	logged, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"type": {"log.archived"}})
	if err != nil || len(logged.Data["entries"].([]interface{})) != 1 {
		t.Fatalf("log.archived entries: %v %v", logged, err)
	}
}
