# apikeys-gateway-bound: an API gateway bound to its own audience. Copy it
# once per gateway and replace "orders-api" with that API's audience: Vault
# then refuses (403) a verify that names another audience or none, so a
# gateway cannot accept keys issued for another API, whatever it sends.
# "*" = [] lets the other verify fields (key, scope, environment, client_ip,
# allow_pending) through with any value.

path "apikeys/verify" {
  capabilities        = ["read", "update"]
  required_parameters = ["audience"]
  allowed_parameters = {
    "audience" = ["orders-api"]
    "*"        = []
  }
}

# The status-code form for a reverse proxy (bootstrap/gateways/), bound
# alike: its audience is a query parameter, which Vault's ACL checks too.

path "apikeys/verify/authorize" {
  capabilities        = ["read"]
  required_parameters = ["audience"]
  allowed_parameters = {
    "audience" = ["orders-api"]
    "*"        = []
  }
}
