# apikeys-operator: the operators / security team. They configure the mount,
# manage clients and roles, run key operations and respond to incidents
# (lock, de-provision, leaks, alerts). They do NOT approve issuance requests:
# approval is the approver's duty (separation of duties), so it is denied
# here explicitly even if another policy of the same token would allow it.

path "apikeys/config" {
  capabilities = ["read", "create", "update", "delete"]
}

path "apikeys/clients/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "apikeys/roles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Issue, read, rotate, stage, promote, roll back, revoke and delete keys
# (rotating under a role with requires_approval also takes approval_id);
# disable and enable them, change their expiry and narrow their scopes, and
# re-issue a revoked key's name (an update of keys/<client>/<name> with role).
path "apikeys/keys/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "apikeys/inventory" {
  capabilities = ["read"]
}

path "apikeys/inventory/export" {
  capabilities = ["read"]
}

path "apikeys/log" {
  capabilities = ["read"]
}

path "apikeys/log/verify" {
  capabilities = ["read", "update"]
}

# Checkpoints (signing one now), proofs, the exact-bytes export, the log
# settings and archival of exported entries past the retention.
path "apikeys/log/checkpoint" {
  capabilities = ["read", "update"]
}

path "apikeys/log/proof/+" {
  capabilities = ["read"]
}

path "apikeys/log/export" {
  capabilities = ["read"]
}

path "apikeys/log/config" {
  capabilities = ["read", "update"]
}

path "apikeys/log/archive" {
  capabilities = ["update"]
}

path "apikeys/leaks" {
  capabilities = ["update"]
}

# List, read and acknowledge alerts. (A LIST of "alerts/" is checked
# against this exact rule first, so it needs "list" too.)
path "apikeys/alerts" {
  capabilities = ["read", "list"]
}

path "apikeys/alerts/*" {
  capabilities = ["read", "list", "update"]
}

path "apikeys/metrics" {
  capabilities = ["read"]
}

path "apikeys/policy" {
  capabilities = ["read"]
}

# Purge dead leased keys past leased_key_retention now (the periodic
# function does it anyway).
path "apikeys/tidy" {
  capabilities = ["update"]
}

# Ask for approval (to rotate a key of a role with requires_approval, the
# rotation needs an approved request made by the rotating entity), see
# requests and deny them (e.g. during an incident), never approve.
path "apikeys/requests" {
  capabilities = ["update"]
}

path "apikeys/requests/" {
  capabilities = ["list"]
}

path "apikeys/requests/+" {
  capabilities = ["read"]
}

path "apikeys/requests/+/deny" {
  capabilities = ["update"]
}

path "apikeys/requests/+/approve" {
  capabilities = ["deny"]
}

# Webhooks: endpoints (their secret is shown once, on create and
# rotate-secret), delivery settings, the deliveries listing and replays.
path "apikeys/notifications/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Automated response policies (what an alert triggers).
path "apikeys/responses" {
  capabilities = ["list"]
}

path "apikeys/responses/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Bulk operations: start (or dry-run) a revoke, rotate or lock by selector,
# follow and cancel them. (A LIST of "operations/" is checked against this
# exact rule first, so it needs "list" too.)
path "apikeys/operations" {
  capabilities = ["update", "list"]
}

path "apikeys/operations/*" {
  capabilities = ["read", "list", "update"]
}
