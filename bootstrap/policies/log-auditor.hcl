# apikeys-log-auditor: an outside auditor or witness of the lifecycle log.
# It fetches signed checkpoints and the proofs that tie them together
# (consistency) and to entries (inclusion), and nothing else: no entries,
# no inventory, no keys, no change, not even signing a checkpoint. An
# inclusion proof carries the entry it proves (entries hold no secrets).

path "apikeys/log/checkpoint" {
  capabilities = ["read"]
}

path "apikeys/log/proof/inclusion" {
  capabilities = ["read"]
}

path "apikeys/log/proof/consistency" {
  capabilities = ["read"]
}
