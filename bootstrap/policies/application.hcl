# apikeys-application: an application (internal client) reading its own
# keys, e.g. through Vault Agent. Templated on identity: the application's
# entity carries metadata client=<client name>, so it reaches only
# keys/<that client>/..., never another client's keys. A token whose entity
# has no "client" metadata gets none of these paths.

path "apikeys/keys/{{identity.entity.metadata.client}}/" {
  capabilities = ["list"]
}

# Read only: no rotate, revoke or delete (those are update/delete).
path "apikeys/keys/{{identity.entity.metadata.client}}/+" {
  capabilities = ["read"]
}

# Short-lived leased keys for its own client.
path "apikeys/creds/{{identity.entity.metadata.client}}/+" {
  capabilities = ["read", "update"]
}

# Exchange its key for a short-lived JWT.
path "apikeys/token" {
  capabilities = ["update"]
}
