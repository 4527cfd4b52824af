//go:build tools

// Package gitleaks pins the gitleaks secret scanner that the scanning
// integration test runs for real; `make gitleaks` builds its main package
// from the versions recorded in this module's go.mod into bin/gitleaks.
package gitleaks

import _ "github.com/zricethezav/gitleaks/v8"
