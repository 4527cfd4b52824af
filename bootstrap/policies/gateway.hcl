# apikeys-gateway: API gateways and resource servers. They verify presented
# keys online and nothing else (jwks, for offline JWT verification, needs no
# token at all). "read" is the GET form (key in the X-Api-Key header, the
# faster one), "update" the POST form (key in the body).

path "apikeys/verify" {
  capabilities = ["read", "update"]
}

# The status-code form for a reverse proxy's sub-request (nginx
# auth_request, Envoy ext_authz, Traefik forwardAuth; bootstrap/gateways/).

path "apikeys/verify/authorize" {
  capabilities = ["read"]
}
