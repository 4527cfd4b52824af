package backend

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const modulePath = "github.com/apikeys/vault-plugin-secrets-apikeys"

// storagePackages are the packages under backend/ that read or write Vault
// storage themselves and so may import sdk/logical (for logical.Storage).
// Every other package holds pure logic: it must not know about Vault
// requests or storage, so it can be tested with a fixed time and no mount.
var storagePackages = map[string]bool{
	"eventlog":   true, // appends to and verifies the log in storage
	"governance": true, // loads and saves the governance state and marks, walks keys and alerts
	"signing":    true, // stores the token signing key set
	"outbox":     true, // follows the log and keeps endpoints and their delivery state
	"logtree":    true, // reads the log's entries and keeps its tree hashes and checkpoints
}

// TestPackageBoundaries keeps the layout of backend/ (README, "Layout"): no
// package under backend/ may depend on backend itself (the Vault glue sits
// on top of the engines, never under them), and only storagePackages may
// depend on sdk/logical.
func TestPackageBoundaries(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", modulePath+"/backend/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	self := modulePath + "/backend"
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if pkg == self {
			continue
		}
		checked++
		name := strings.TrimPrefix(pkg, self+"/")
		for _, d := range deps {
			if d == self {
				t.Errorf("%s depends on backend: engines must not import the Vault glue", name)
			}
			if d == "github.com/hashicorp/vault/sdk/logical" && !storagePackages[name] {
				t.Errorf("%s depends on sdk/logical: pure packages take plain values (list it in storagePackages if it really does storage I/O)", name)
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list found no packages under backend/")
	}
}

// TestReadmeLayoutListsEveryPackage keeps the README's layout table whole:
// every package under backend/ and every library package (verifier/) is
// named there, with what it is for.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "## Layout")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	out, err := exec.Command("go", "list", modulePath+"/backend/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		name := strings.TrimPrefix(pkg, modulePath+"/backend")
		if name == "" {
			continue
		}
		name = strings.TrimPrefix(name, "/")
		if !strings.Contains(layout, "`backend/"+name+"`") && !strings.Contains(layout, "`"+name+"`") {
			t.Errorf("README's layout table does not name backend/%s", name)
		}
	}
	// The library packages other modules import sit at the module root.
	out, err = exec.Command("go", "list", modulePath+"/verifier/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		name := strings.TrimPrefix(pkg, modulePath+"/")
		if !strings.Contains(layout, "`"+name+"/`") && !strings.Contains(layout, "`"+name+"`") {
			t.Errorf("README's layout table does not name %s", name)
		}
	}
}
