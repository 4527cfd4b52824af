# vault-plugin-secrets-apikeys — build, run and test against a real Vault.
SHELL := /bin/bash
GO ?= go
VERSION := $(shell cat VERSION)
PLUGIN := vault-plugin-secrets-apikeys
LDFLAGS := -X github.com/apikeys/vault-plugin-secrets-apikeys/backend.Version=$(VERSION)
VAULT_SOURCES := bootstrap/vault/go.mod bootstrap/vault/go.sum bootstrap/vault/main.go
# Race-detector tests of the unit packages (the plugin, and the verifier
# library resource servers import); integration tests run the real plugin
# process inside a real Vault.
UNIT_PKGS := ./backend/... ./verifier/...
INTEGRATION_TIMEOUT ?= 40m

.PHONY: all build vault scan-tools keycheck deps dev test fmt-check vet unit bench-smoke fuzz-smoke integration bench bench-rotation bench-token bench-webhooks bench-bulk bench-inventory bench-scale clean

all: build

## build: the plugin binary, with its version stamped in.
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)

## vault: the Vault v1.13.2 (MPL-2.0) server, built once from bootstrap/vault.
vault: bin/vault

bin/vault: $(VAULT_SOURCES)
	cd bootstrap/vault && $(GO) build -trimpath -o ../../bin/vault .

## scan-tools: gitleaks (pinned in bootstrap/gitleaks, built once like bin/vault)
## and apikeys-keycheck, the key checksum validator, into bin/.
scan-tools: bin/gitleaks keycheck

# The version gitleaks reports is the one go.mod pins (its main package
# expects it stamped in at build time).
GITLEAKS_VERSION = $(shell awk '$$1 == "require" && $$2 == "github.com/zricethezav/gitleaks/v8" {print $$3}' bootstrap/gitleaks/go.mod)

bin/gitleaks: bootstrap/gitleaks/go.mod bootstrap/gitleaks/go.sum bootstrap/gitleaks/tools.go
	cd bootstrap/gitleaks && $(GO) build -trimpath -ldflags "-X github.com/zricethezav/gitleaks/v8/version.Version=$(GITLEAKS_VERSION)" -o ../../bin/gitleaks github.com/zricethezav/gitleaks/v8

keycheck:
	$(GO) build -trimpath -o bin/apikeys-keycheck ./cmd/apikeys-keycheck

## dev: run a dev Vault on loopback with the plugin mounted at apikeys/.
dev: build bin/vault
	./scripts/dev.sh

# npm ci installs exactly the lock file's versions; it reruns only when the
# lock file changes (npm writes node_modules/.package-lock.json).
OPENAPI_LINT := bootstrap/ci/openapi/node_modules/.package-lock.json

## deps: the Debian packages the integration tests drive (bootstrap/ci/debian-packages.txt),
## and the pinned OpenAPI linter (bootstrap/ci/openapi, npm; needs Node.js >= 20.19).
deps: $(OPENAPI_LINT)
	./scripts/install-deps.sh

$(OPENAPI_LINT): bootstrap/ci/openapi/package.json bootstrap/ci/openapi/package-lock.json
	cd bootstrap/ci/openapi && npm ci --no-audit --no-fund
	touch $@

## test: everything CI checks.
test: deps fmt-check vet unit bench-smoke fuzz-smoke integration

fmt-check:
	@out=$$(gofmt -l backend cmd internal integration scripts verifier); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The commands under cmd/ (the key checksum validator) are unit-tested too.
unit:
	$(GO) test -race -count=1 $(UNIT_PKGS) ./cmd/...

# Every in-process benchmark once, so none rots unnoticed. The report that
# judges ratios (make bench-rotation) is left to its own target: a timed
# verdict on a shared CI machine would be a flaky test.
bench-smoke:
	set -o pipefail; $(GO) test -run '^$$' -bench . -skip '^Benchmark(Rotation|Scale)Report$$' -benchtime=1x -count=1 $(UNIT_PKGS) | grep -vE '^(Benchmark|goos|goarch|pkg|cpu|PASS)'

# Every Go native fuzz target for a few thousand new inputs (its seed
# corpus in testdata/fuzz already runs with the unit tests). go test fuzzes
# one target per run, so each is listed and run in turn. The budget is a
# count of executions, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report its own deadline as a failure when a loaded machine
# delays a worker at the end of the window (go.dev/issue/75804).
FUZZ_PKGS := ./backend ./backend/keyformat ./backend/schedule ./backend/scopes
FUZZTIME ?= 20000x

fuzz-smoke:
	set -eo pipefail; for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg | grep -vE '^fuzz: elapsed'; \
		done; \
	done

integration: bin/vault deps scan-tools
	$(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) ./integration/...

## bench: throughput and latency ratios measured side by side in one run.
bench: bin/vault
	$(GO) run ./scripts/bench

## bench-token: the verifier library's offline JWT check vs a bare Ed25519 check, and vs online verify.
bench-token: bin/vault
	$(GO) run ./scripts/bench-token

## bench-webhooks: verify with 3 webhook endpoints vs none, and a 10k-event backlog drained after an outage.
bench-webhooks: bin/vault
	$(GO) run ./scripts/bench-webhooks

## bench-bulk: a bulk revoke of 100,000 keys: keys/s, verify throughput beside it, a plugin kill midway.
bench-bulk: bin/vault
	$(GO) run ./scripts/bench-bulk

## bench-inventory: one page's latency on a 100,000-key mount over a 10,000-key one (bar 1.5).
bench-inventory: bin/vault
	$(GO) run ./scripts/bench-inventory

## bench-scale: costs at 1M keys over 10k in-process, then a real Vault at 100k keys over 10k.
SCALE_KEYS ?= 1000000
bench-scale: bin/vault
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkScaleReport$$' -benchtime=1x -count=1 -timeout 120m ./backend/ -args -scale.keys=$(SCALE_KEYS) | grep -vE '^(goos|goarch|pkg|cpu|PASS)'
	$(GO) run ./scripts/bench-scale

## bench-rotation: idle tick cost at 1k vs 100k keys, and time to rotate 10k due keys.
bench-rotation:
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkRotationReport$$' -benchtime=1x -count=1 ./backend/ | grep -E '^(tick_|rebuild_|rotate_|ok|FAIL|---)'

clean:
	rm -rf bin .dev
