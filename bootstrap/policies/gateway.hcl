# apikeys-gateway: API gateways and resource servers. They verify presented
# keys online and nothing else (jwks, for offline JWT verification, needs no
# token at all). "read" is the GET form (key in the X-Api-Key header, the
# faster one), "update" the POST form (key in the body).

path "apikeys/verify" {
  capabilities = ["read", "update"]
}
