#!/usr/bin/env bash
# Start a dev Vault on loopback with the locally built plugin registered by
# SHA-256 and version, mounted at apikeys/, a file audit device enabled and
# the example policies loaded. Stays in the foreground until Ctrl-C.
# Usage: make dev   (PORT=8200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${PORT:-8200}
VERSION=$(cat VERSION)
DEV_DIR=$ROOT/.dev
PLUGIN_DIR=$DEV_DIR/plugins
export VAULT_ADDR=http://127.0.0.1:$PORT
export VAULT_TOKEN=root
VAULT=$ROOT/bin/vault

# A previous run may have left a server behind (e.g. killed with -9).
if [[ -f $DEV_DIR/vault.pid ]] && kill -0 "$(cat "$DEV_DIR/vault.pid")" 2>/dev/null; then
  echo "stopping the dev server left by a previous run"
  kill "$(cat "$DEV_DIR/vault.pid")" || true
  sleep 1
fi
rm -rf "$DEV_DIR"
mkdir -p "$PLUGIN_DIR"
cp bin/vault-plugin-secrets-apikeys "$PLUGIN_DIR/"
SHA=$(sha256sum "$PLUGIN_DIR/vault-plugin-secrets-apikeys" | cut -d' ' -f1)
cat > "$DEV_DIR/config.hcl" <<HCL
plugin_directory = "$PLUGIN_DIR"
disable_mlock = true
ui = false
HCL

HOME=$DEV_DIR "$VAULT" server -dev -dev-root-token-id=root \
  -dev-listen-address="127.0.0.1:$PORT" -config="$DEV_DIR/config.hcl" \
  >"$DEV_DIR/vault.log" 2>&1 &
VAULT_PID=$!
echo $VAULT_PID > "$DEV_DIR/vault.pid"
cleanup() {
  kill "$VAULT_PID" 2>/dev/null || true
  wait "$VAULT_PID" 2>/dev/null || true
  rm -f "$DEV_DIR/vault.pid"
  echo "dev server stopped"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
  "$VAULT" status >/dev/null 2>&1 && break
  kill -0 $VAULT_PID 2>/dev/null || { cat "$DEV_DIR/vault.log"; exit 1; }
  sleep 0.2
done

"$VAULT" plugin register -sha256="$SHA" -version="$VERSION" \
  -command=vault-plugin-secrets-apikeys secret apikeys
"$VAULT" audit enable file file_path="$DEV_DIR/audit.log" >/dev/null
"$VAULT" secrets enable -path=apikeys -plugin-version="$VERSION" \
  -audit-non-hmac-response-keys=key_id -audit-non-hmac-response-keys=client \
  -audit-non-hmac-response-keys=role -audit-non-hmac-response-keys=version \
  -audit-non-hmac-response-keys=state -audit-non-hmac-response-keys=active \
  -audit-non-hmac-response-keys=code \
  -audit-non-hmac-request-keys=client -audit-non-hmac-request-keys=role \
  -audit-non-hmac-request-keys=name \
  -passthrough-request-headers=X-Api-Key apikeys
for p in bootstrap/policies/*.hcl; do
  [[ -e $p ]] || continue
  "$VAULT" policy write "apikeys-$(basename "$p" .hcl)" "$p" >/dev/null
done

cat <<MSG

  Vault dev server with vault-plugin-secrets-apikeys $VERSION mounted at apikeys/

    export VAULT_ADDR=$VAULT_ADDR
    export VAULT_TOKEN=root
    export PATH=$ROOT/bin:\$PATH

  Audit log: $DEV_DIR/audit.log    Server log: $DEV_DIR/vault.log

  Try:
    vault secrets list -detailed | grep apikeys
    vault path-help apikeys/config
    vault write apikeys/clients/billing owner=team-payments type=internal
    vault write apikeys/roles/orders-read scopes=orders:read environment=prod rotation_period=720h
    vault write apikeys/keys/billing/main role=orders-read
    vault write apikeys/verify key=<the key>
    vault read apikeys/log/verify

  Ctrl-C stops the server.
MSG
wait $VAULT_PID
