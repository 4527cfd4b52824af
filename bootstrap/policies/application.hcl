# apikeys-application: an application (internal client) reading its own
# keys, e.g. through Vault Agent. Templated on identity: the application's
# entity carries metadata client=<client name>, so it reaches only
# keys/<that client>/..., never another client's keys. A token whose entity
# has no "client" metadata gets none of these paths.

path "apikeys/keys/{{identity.entity.metadata.client}}/" {
  capabilities = ["list"]
}

# Read only: no revoke, update or delete (those are update/delete here).
path "apikeys/keys/{{identity.entity.metadata.client}}/+" {
  capabilities = ["read"]
}

# Rotate (or stage, stage=true) and promote its own keys: a new secret of a
# key goes to whoever may read that key. Under a role with requires_approval
# the plugin also wants an approved request (approval_id) made by this same
# entity; see apikeys-operator for who may ask for one.
path "apikeys/keys/{{identity.entity.metadata.client}}/+/rotate" {
  capabilities = ["update"]
}

path "apikeys/keys/{{identity.entity.metadata.client}}/+/promote" {
  capabilities = ["update"]
}

# Short-lived leased keys for its own client.
path "apikeys/creds/{{identity.entity.metadata.client}}/+" {
  capabilities = ["read", "update"]
}

# Exchange its key for a short-lived JWT.
path "apikeys/token" {
  capabilities = ["update"]
}
