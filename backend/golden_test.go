package backend

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
)

// The goldens pin what a re-layout of this module must not change: the test
// names, the mount's OpenAPI document and the storage schema. Regenerate them
// with `go test ./backend/ -run TestGolden -update` (or UPDATE_GOLDEN=1).
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func goldenUpdating() bool { return *updateGolden || os.Getenv("UPDATE_GOLDEN") == "1" }

// checkGolden compares got with testdata/golden/<name>, or rewrites the file
// when updating, and fails with a unified diff on a mismatch.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if goldenUpdating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./backend/ -run TestGolden -update)", err)
	}
	if string(want) == string(got) {
		return
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)),
		FromFile: path, ToFile: "generated", Context: 2,
	})
	t.Errorf("%s differs from the code (if the change is intended, regenerate with: "+
		"go test ./backend/ -run TestGolden -update):\n%s", path, strings.TrimSpace(diff))
}
