# Policy of a CI job's Vault token: read short-lived leased keys of the
# ci-shop client under the ci-deploy role. The leases belong to the job's
# token, so they are revoked when the job's token expires or is revoked.
path "apikeys/creds/ci-shop/ci-deploy" {
  capabilities = ["read"]
}
