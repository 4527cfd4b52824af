# apikeys-gateway: API gateways and resource servers. They verify presented
# keys online and nothing else (jwks, for offline JWT verification, needs no
# token at all).

path "apikeys/verify" {
  capabilities = ["update"]
}
