# apikeys-issuer: people or pipelines that issue keys to clients under the
# existing roles. They may ask for approval (requests) but not approve, and
# cannot change config, clients or roles, revoke keys or read the log.

# Issue a key: create only, so an existing key is never overwritten. The
# secret is in the issuance response; reading keys again (which returns the
# secret of retrievable keys) is the application's right, not the issuer's.
path "apikeys/keys/+/+" {
  capabilities = ["create"]
}

path "apikeys/keys/+/" {
  capabilities = ["list"]
}

path "apikeys/keys/+/+/rotate" {
  capabilities = ["update"]
}

# Leased keys.
path "apikeys/creds/+/+" {
  capabilities = ["read", "update"]
}

# Ask for approval, follow own requests.
path "apikeys/requests" {
  capabilities = ["update"]
}

path "apikeys/requests/" {
  capabilities = ["list"]
}

path "apikeys/requests/+" {
  capabilities = ["read"]
}

# Look up what can be issued to whom.
path "apikeys/clients/" {
  capabilities = ["list"]
}

path "apikeys/clients/+" {
  capabilities = ["read"]
}

path "apikeys/roles/" {
  capabilities = ["list"]
}

path "apikeys/roles/+" {
  capabilities = ["read"]
}

path "apikeys/inventory" {
  capabilities = ["read"]
}

path "apikeys/policy" {
  capabilities = ["read"]
}
