# apikeys-auditor: read-only oversight. The lifecycle log and its chain
# check, the inventory, revocation lists, alerts, metrics, the public key
# policy, config, clients, roles and requests. Never key secrets (no
# keys/...), never a change (acknowledging alerts is the operators' job).

path "apikeys/log" {
  capabilities = ["read"]
}

path "apikeys/log/verify" {
  capabilities = ["read", "update"]
}

# Signed checkpoints, their proofs and the exact-bytes export an archive is
# checked with; never signing, archiving or changing the log settings.
path "apikeys/log/checkpoint" {
  capabilities = ["read"]
}

path "apikeys/log/proof/+" {
  capabilities = ["read"]
}

path "apikeys/log/export" {
  capabilities = ["read"]
}

path "apikeys/log/config" {
  capabilities = ["read"]
}

path "apikeys/inventory" {
  capabilities = ["read"]
}

# The inventory as JSON lines or CSV, page by page, for audits.
path "apikeys/inventory/export" {
  capabilities = ["read"]
}

path "apikeys/metrics" {
  capabilities = ["read"]
}

path "apikeys/policy" {
  capabilities = ["read"]
}

path "apikeys/alerts" {
  capabilities = ["read"]
}

path "apikeys/alerts/" {
  capabilities = ["list"]
}

path "apikeys/alerts/+" {
  capabilities = ["read"]
}

# Bulk operations: their selectors, reasons and progress; never starting
# or cancelling one.
path "apikeys/operations" {
  capabilities = ["list"]
}

path "apikeys/operations/" {
  capabilities = ["list"]
}

path "apikeys/operations/+" {
  capabilities = ["read"]
}

path "apikeys/config" {
  capabilities = ["read"]
}

path "apikeys/clients/" {
  capabilities = ["list"]
}

path "apikeys/clients/+" {
  capabilities = ["read"]
}

path "apikeys/clients/+/revocations" {
  capabilities = ["read"]
}

path "apikeys/clients/+/restriction" {
  capabilities = ["read"]
}

path "apikeys/roles/" {
  capabilities = ["list"]
}

path "apikeys/roles/+" {
  capabilities = ["read"]
}

path "apikeys/requests/" {
  capabilities = ["list"]
}

path "apikeys/requests/+" {
  capabilities = ["read"]
}

# Where events are pushed and what alerts trigger: endpoints (never their
# secrets, which no read returns), delivery settings and attempts, response
# policies. No changes, no replays.
path "apikeys/notifications/config" {
  capabilities = ["read"]
}

path "apikeys/notifications/deliveries" {
  capabilities = ["read"]
}

path "apikeys/notifications/endpoints/" {
  capabilities = ["list"]
}

path "apikeys/notifications/endpoints/+" {
  capabilities = ["read"]
}

path "apikeys/responses" {
  capabilities = ["list"]
}

path "apikeys/responses/+" {
  capabilities = ["read"]
}
