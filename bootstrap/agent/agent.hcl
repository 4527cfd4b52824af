# Vault Agent for an application that uses an API key issued by the apikeys
# secrets engine. Agent logs in with AppRole, renders the key into a file the
# application reads, and re-renders it after each rotation, scheduled or by
# hand, before the previous version's grace period ends.
#
#   vault agent -config=bootstrap/agent/agent.hcl
#
# The AppRole's token needs the apikeys-application policy
# (bootstrap/policies/application.hcl) and an entity whose metadata has
# client=checkout, so it can read only keys/checkout/*.

pid_file = "/run/app/vault-agent.pid"

vault {
  address = "https://vault.example.internal:8200"
  # ca_cert = "/etc/app/vault-ca.pem"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/app/vault-role-id"
      secret_id_file_path                 = "/etc/app/vault-secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  # For a local try-out with a dev server, a token file works as well:
  # method "token_file" {
  #   config = {
  #     token_file_path = "/tmp/vault-token"
  #   }
  # }
}

template_config {
  # Fail loudly instead of serving a stale key forever if Vault is
  # unreachable for longer than the retry budget.
  exit_on_retry_failure = true
}

template {
  source      = "/etc/app/apikey.ctmpl"
  destination = "/run/app/apikey.env"
  perms       = "0600"
  # Tell the application to re-read its key; during the rotation's grace
  # period the previous key is still accepted, so there is no outage.
  command     = "systemctl reload app"
}
