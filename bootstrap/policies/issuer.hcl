# apikeys-issuer: people or pipelines that issue keys to clients under the
# existing roles. They may ask for approval (requests) but not approve, and
# cannot change config, clients or roles, revoke keys or read the log.
#
# An issuer gets the secret of a key it creates, once, to hand it over. It
# never gets a secret of a key that exists: reading a key (which returns the
# secret of retrievable keys), rotating or staging it (which returns the new
# secret) and promoting or rolling it back are the rights of the client's
# application (apikeys-application) and of operators. Leased keys
# (creds/...) live as long as the lease of the token that read them, so they
# are for the application itself, not for an issuer to hand over.

# Issue a key: create only, so an existing key is never overwritten and no
# sub-path (rotate, promote, ...) matches.
path "apikeys/keys/+/+" {
  capabilities = ["create"]
}

path "apikeys/keys/+/" {
  capabilities = ["list"]
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
