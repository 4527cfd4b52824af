# apikeys-approver: reviews and approves or denies issuance requests for
# roles with requires_approval. Approvers must log in through an auth method
# that maps to an identity entity (the plugin refuses approvals from tokens
# without one, and from the requester's own entity). They cannot issue keys.

path "apikeys/requests/" {
  capabilities = ["list"]
}

path "apikeys/requests/+" {
  capabilities = ["read"]
}

path "apikeys/requests/+/approve" {
  capabilities = ["update"]
}

path "apikeys/requests/+/deny" {
  capabilities = ["update"]
}

# Context for the decision.
path "apikeys/clients/+" {
  capabilities = ["read"]
}

path "apikeys/roles/+" {
  capabilities = ["read"]
}

path "apikeys/inventory" {
  capabilities = ["read"]
}
