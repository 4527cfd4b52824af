package shortlived

import (
	"context"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/bootstrap/ci"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	ciexample "github.com/apikeys/vault-plugin-secrets-apikeys/scripts/ci-example"
)

// TestCIExample runs the CI example: a job with only its signed job token
// logs in through Vault's JWT auth method and gets a leased key scoped to
// the job, which dies with the job's Vault token.
func TestCIExample(t *testing.T) {
	ctx := context.Background()
	m := newMount(t)
	iss, err := ciexample.NewIssuer("https://ci.example.internal")
	if err != nil {
		t.Fatal(err)
	}
	if err := ciexample.Setup(ctx, client(t), "jwt-ci", m, iss); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	job, err := iss.JobToken(ciexample.Job{Repository: "acme/shop", Ref: "refs/heads/main", RunID: "42"}, now)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := ciexample.RunPipeline(ctx, vaulttest.Shared.Addr, "jwt-ci", m, job)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Key == "" || creds.LeaseID == "" || creds.LeaseDuration != 10*time.Minute || len(creds.Scopes) != 2 {
		t.Fatalf("creds = %+v", creds)
	}
	v := write(t, m+"/verify", map[string]interface{}{"key": creds.Key, "scope": "deploy:write", "audience": "deploy-api", "environment": "staging"})
	if v.Data["active"] != true || v.Data["client"] != ci.Client || v.Data["role"] != ci.Role {
		t.Fatalf("verify of the job's key = %v", v.Data)
	}
	// The key is attributed to the job's identity (JWT auth entity).
	if evs := logEvents(t, m, "key.issued"); len(evs) != 1 || actorType(evs[0]) != "entity" {
		t.Fatalf("issuance events = %v", evs)
	}

	// The job's token reads nothing but its creds path.
	jobClient := tokenClient(t, creds.VaultToken)
	_, err = jobClient.Logical().Read(m + "/keys/" + ci.Client)
	expectStatus(t, err, 403, "")
	_, err = jobClient.Logical().Write(m+"/roles/"+ci.Role, map[string]interface{}{"scopes": "*"})
	expectStatus(t, err, 403, "")

	// Job tokens of another branch, or not signed by the issuer, get in nowhere.
	other, _ := iss.JobToken(ciexample.Job{Repository: "acme/shop", Ref: "refs/heads/feature", RunID: "43"}, now)
	if _, err := ciexample.RunPipeline(ctx, vaulttest.Shared.Addr, "jwt-ci", m, other); err == nil {
		t.Fatal("a job token of an unbound branch logged in")
	}
	rogue, _ := ciexample.NewIssuer("https://ci.example.internal")
	forged, _ := rogue.JobToken(ciexample.Job{Repository: "acme/shop", Ref: "refs/heads/main", RunID: "44"}, now)
	if _, err := ciexample.RunPipeline(ctx, vaulttest.Shared.Addr, "jwt-ci", m, forged); err == nil {
		t.Fatal("a job token signed by another key logged in")
	}

	// When the job ends (its token is revoked), its key is dead.
	if err := client(t).Auth().Token().RevokeTree(creds.VaultToken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job's key to die with its token", 30*time.Second, func() bool {
		active, code := verify(t, m, creds.Key)
		return !active && code == "revoked"
	})
}
