package backend

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestGoldenTestNames pins every test, benchmark and fuzz target of
// the module, by package directory and name, so a re-layout can show that no
// test was lost. The names come from the test files' syntax (what
// `go test -list` reports) rather than from running the binaries, because the
// integration packages start a Vault in TestMain even for -list.
func TestGoldenTestNames(t *testing.T) {
	names := moduleTestNames(t, "..")
	if !goldenUpdating() {
		if want, err := os.ReadFile(filepath.Join("testdata", "golden", "test_names.txt")); err == nil {
			reportMovedTests(t, string(want), names)
		}
	}
	checkGolden(t, "test_names.txt", []byte(strings.Join(names, "\n")+"\n"))
}

// moduleTestNames lists "<package dir> <func>" for every test function under
// root, sorted; nested modules and testdata are skipped as `go test ./...` does.
func moduleTestNames(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if path != root && (base == "testdata" || base == "vendor" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, name := range testFuncs(f) {
			names = append(names, filepath.ToSlash(rel)+" "+name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// reportMovedTests explains a name-set change by (package, name): tests that
// moved package, tests that are gone and tests that are new.
func reportMovedTests(t *testing.T, want string, got []string) {
	t.Helper()
	pkgsOf := func(lines []string) map[string][]string {
		m := map[string][]string{}
		for _, l := range lines {
			if pkg, name, ok := strings.Cut(l, " "); ok {
				m[name] = append(m[name], pkg)
			}
		}
		return m
	}
	wantSet := map[string]bool{}
	wantLines := strings.Split(strings.TrimSpace(want), "\n")
	for _, l := range wantLines {
		wantSet[l] = true
	}
	gotSet := map[string]bool{}
	for _, l := range got {
		gotSet[l] = true
	}
	wantPkgs, gotPkgs := pkgsOf(wantLines), pkgsOf(got)
	var report []string
	for _, l := range wantLines {
		if gotSet[l] {
			continue
		}
		pkg, name, _ := strings.Cut(l, " ")
		if now := gotPkgs[name]; len(now) > 0 && len(wantPkgs[name]) == 1 && len(now) == 1 {
			report = append(report, fmt.Sprintf("moved: %s  %s -> %s", name, pkg, now[0]))
			continue
		}
		report = append(report, "gone:  "+l)
	}
	for _, l := range got {
		if wantSet[l] {
			continue
		}
		_, name, _ := strings.Cut(l, " ")
		if len(wantPkgs[name]) == 1 && len(gotPkgs[name]) == 1 {
			continue // reported as moved
		}
		report = append(report, "new:   "+l)
	}
	if len(report) > 0 {
		t.Logf("test names by (package, name):\n%s", strings.Join(report, "\n"))
	}
}

// testFuncs names the top-level functions of f that `go test` runs, by the
// rule of the testing package: a prefix followed by a non-lowercase letter.
func testFuncs(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name == "TestMain" {
			continue
		}
		for _, prefix := range []string{"Test", "Benchmark", "Fuzz"} {
			if isTestName(fn.Name.Name, prefix) {
				out = append(out, fn.Name.Name)
				break
			}
		}
	}
	return out
}

func isTestName(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}
