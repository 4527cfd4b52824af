package gateway

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Envoy and Traefik configurations cannot be run here (neither is in
// Debian). This checks what can be checked without them: each is valid
// YAML, reaches verify/authorize with the key only in a header, and passes
// the identity headers upstream, so a rename in the plugin cannot leave
// them behind unnoticed.

func readGatewayConfig(t *testing.T, name string) (string, map[string]interface{}) {
	t.Helper()
	raw := bootstrapFile(t, "gateways", name)
	var doc map[string]interface{}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("%s is not valid YAML: %v", name, err)
	}
	return raw, doc
}

// dig follows keys (map keys, or list indexes as ints) into a YAML document.
func dig(t *testing.T, v interface{}, path ...interface{}) interface{} {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]interface{})
			if !ok {
				t.Fatalf("no %q in %v", k, path)
			}
			v = m[k]
		case int:
			l, ok := v.([]interface{})
			if !ok || k >= len(l) {
				t.Fatalf("no [%d] in %v", k, path)
			}
			v = l[k]
		}
	}
	return v
}

var identityHeaders = []string{"X-Apikeys-Client", "X-Apikeys-Key-Id", "X-Apikeys-Owner", "X-Apikeys-Scope"}

func TestTraefikConfigUsesAuthorize(t *testing.T) {
	_, doc := readGatewayConfig(t, "traefik.yml")
	mws := dig(t, doc, "http", "middlewares").(map[string]interface{})
	n := 0
	for name, mw := range mws {
		fa, ok := mw.(map[string]interface{})["forwardAuth"]
		if !ok {
			continue
		}
		n++
		addr := dig(t, fa, "address").(string)
		if !strings.Contains(addr, "/v1/apikeys/verify/authorize?") || strings.Contains(addr, "key=") {
			t.Errorf("%s: address %q", name, addr)
		}
		if got := dig(t, fa, "authRequestHeaders"); len(got.([]interface{})) != 1 || got.([]interface{})[0] != "X-Api-Key" {
			t.Errorf("%s: authRequestHeaders %v, want only X-Api-Key", name, got)
		}
		resp := dig(t, fa, "authResponseHeaders").([]interface{})
		for _, h := range identityHeaders {
			found := false
			for _, r := range resp {
				found = found || r == h
			}
			if !found {
				t.Errorf("%s: authResponseHeaders lacks %s", name, h)
			}
		}
	}
	if n == 0 {
		t.Fatal("traefik.yml has no forwardAuth middleware")
	}
}

func TestEnvoyConfigUsesAuthorize(t *testing.T) {
	raw, doc := readGatewayConfig(t, "envoy.yaml")
	hcm := dig(t, doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	authz := dig(t, hcm, "http_filters", 0, "typed_config")
	if dig(t, authz, "failure_mode_allow") != false {
		t.Error("ext_authz must fail closed")
	}
	svc := dig(t, authz, "http_service")
	allowed := dig(t, svc, "authorization_request", "allowed_headers", "patterns").([]interface{})
	for _, p := range allowed {
		if strings.Contains(strings.ToLower(dig(t, p, "exact").(string)), "vault") {
			t.Errorf("a caller's Vault header reaches Vault: %v", p)
		}
	}
	if dig(t, svc, "authorization_response", "allowed_upstream_headers", "patterns", 0, "prefix") != "x-apikeys-" {
		t.Error("the identity headers do not reach the upstream")
	}
	if !strings.Contains(raw, `"/v1/apikeys/verify/authorize?"`) {
		t.Error("the Lua filter does not set verify/authorize's path")
	}
}
