package backend

import (
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// De-provisioning revokes leased keys at once, but a plugin cannot end
// Vault's leases: the answer says so and how to clear them, naming the
// mount; once Vault revokes a lease, its callback finds the key dead and
// succeeds without a change.
func TestDeprovisionSaysWhatBecomesOfVaultLeases(t *testing.T) {
	e := newPurgeEnv(t, "72h")
	l := e.issueLeased()
	e.issue("acme", "managed", "partner", nil)
	resp, err := e.b.HandleRequest(e.ctx, &logical.Request{
		Operation: logical.DeleteOperation, Path: "clients/acme", MountPoint: "partners/",
		Storage: e.storage, Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("de-provisioning: %v %v", resp, err)
	}
	if resp.Data["keys_revoked"] != 2 || len(resp.Warnings) != 1 ||
		!strings.Contains(resp.Warnings[0], "leased keys revoked: 1") ||
		!strings.Contains(resp.Warnings[0], "vault lease revoke -prefix partners/creds/acme") {
		t.Fatalf("de-provisioning answer: %v warnings %q", resp.Data, resp.Warnings)
	}
	if c := e.verifyCode(l.key, nil); c != record.CodeRevoked {
		t.Fatalf("leased key after de-provisioning: %q", c)
	}
	before := len(e.logTypes())
	e.revokeLease(l)
	if after := len(e.logTypes()); after != before {
		t.Fatalf("revoking the lease of a dead key logged %d entries", after-before)
	}
}
