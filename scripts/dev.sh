#!/usr/bin/env bash
# Start the dev Vault of `make dev` (PORT=8200 by default): the recipe is the
# one integration tests use (internal/vaulttest), run by scripts/dev, so the
# dev server and the tests cannot drift apart. Stays in the foreground until
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/apikeys-dev ./scripts/dev
exec bin/apikeys-dev
