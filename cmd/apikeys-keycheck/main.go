// Command apikeys-keycheck tells secret scanners which candidates are
// well-formed keys of vault-plugin-secrets-apikeys: the right shape and a
// checksum that matches (backend/keyformat.Parse, the check verify runs
// before any lookup). A regex cannot check a CRC32, so a scanner's rule also
// matches typos, truncated or extended copies and look-alikes; this drops
// them offline, without asking Vault.
//
//	apikeys-keycheck [-prefix ak,...] < candidates
//	    one candidate per line on stdin (blank lines skipped)
//	apikeys-keycheck [-prefix ak,...] KEY...
//	    candidates as arguments (visible to other users in the process
//	    list: prefer stdin for real keys)
//	apikeys-keycheck [-prefix ak,...] [-rules vault-apikeys] -gitleaks REPORT.json
//	    a gitleaks JSON report (--report-format json); writes the report
//	    again keeping only findings worth acting on: those of a rule whose
//	    id starts with -rules that hold a well-formed key, every finding
//	    of other rules unchanged, and findings whose secret gitleaks
//	    redacted (--redact), which cannot be checked; with -keys, writes
//	    instead the distinct well-formed keys it found, one per line, ready
//	    for the mount's leaks endpoint
//
// In candidate mode the well-formed keys are written to stdout, one per
// line, so the command filters a list; a count goes to stderr, never a key.
// -prefix keeps only keys whose prefix is listed (a mount's key_prefix).
//
// Exit status, as grep's: 0 when at least one candidate, finding or key is
// written, 1 when none is, 2 on a usage or input error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	exitFound = 0
	exitNone  = 1
	exitError = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apikeys-keycheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefixes := fs.String("prefix", "", "comma-separated key prefixes to accept (default: any)")
	report := fs.String("gitleaks", "", "a gitleaks JSON report to filter")
	rules := fs.String("rules", "vault-apikeys", "in a gitleaks report, check the findings of rules whose id starts with this")
	keysOnly := fs.Bool("keys", false, "with -gitleaks: write the distinct well-formed keys, one per line, not the report")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	c, err := newChecker(*prefixes)
	if err != nil {
		fmt.Fprintln(stderr, "apikeys-keycheck:", err)
		return exitError
	}
	var kept int
	switch {
	case *report != "" && fs.NArg() > 0:
		fmt.Fprintln(stderr, "apikeys-keycheck: -gitleaks takes no candidate arguments")
		return exitError
	case *keysOnly && *report == "":
		fmt.Fprintln(stderr, "apikeys-keycheck: -keys needs -gitleaks")
		return exitError
	case *report != "":
		kept, err = filterGitleaks(c, *report, *rules, *keysOnly, stdout, stderr)
	case fs.NArg() > 0:
		kept, err = filterCandidates(c, strings.NewReader(strings.Join(fs.Args(), "\n")), stdout, stderr)
	default:
		kept, err = filterCandidates(c, stdin, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "apikeys-keycheck:", err)
		return exitError
	}
	if kept == 0 {
		return exitNone
	}
	return exitFound
}
