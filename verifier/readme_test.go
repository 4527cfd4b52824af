package verifier

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippetIsTheExample keeps the README's Go snippet compiling:
// every ```go block of its verifier section must appear, line for line
// (indentation aside), in example_test.go, which go test compiles.
func TestReadmeSnippetIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Verifier library for Go resource servers")
	if !ok {
		t.Fatal(`README has no "Verifier library for Go resource servers" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	want := "\n" + strings.Join(trimmedLines(string(example)), "\n") + "\n"
	blocks := 0
	for {
		_, rest, ok := strings.Cut(section, "```go\n")
		if !ok {
			break
		}
		block, after, _ := strings.Cut(rest, "```")
		section = after
		blocks++
		if got := "\n" + strings.Join(trimmedLines(block), "\n") + "\n"; !strings.Contains(want, got) {
			t.Errorf("README go block %d is not in example_test.go as it stands:\n%s", blocks, block)
		}
	}
	if blocks == 0 {
		t.Fatal("the README's verifier section has no go block")
	}
}

func trimmedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
