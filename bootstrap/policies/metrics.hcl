# apikeys-metrics: a Prometheus scraper. Reads the mount's metrics
# (GET apikeys/metrics?format=prometheus) and nothing else: no key, client,
# alert or log. Give its token to Prometheus as a credentials file
# (bootstrap/prometheus/prometheus.yml).

path "apikeys/metrics" {
  capabilities = ["read"]
}
