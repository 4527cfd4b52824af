// Command run plays the CI example end to end against the Vault at
// VAULT_ADDR (token VAULT_TOKEN, an operator's), e.g. a `make dev` server:
//
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root go run ./scripts/ci-example/run
//
// It sets up the JWT auth method, a job logs in with a signed job token and
// reads a leased key, and the key is checked with verify. The key itself is
// never printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/vault/api"

	ciexample "github.com/apikeys/vault-plugin-secrets-apikeys/scripts/ci-example"
)

func main() {
	mount := flag.String("mount", "apikeys", "path of the apikeys mount")
	authPath := flag.String("auth-path", "jwt-ci", "path to enable the JWT auth method at")
	flag.Parse()
	if err := run(*mount, *authPath); err != nil {
		fmt.Fprintln(os.Stderr, "ci-example:", err)
		os.Exit(1)
	}
}

func run(mount, authPath string) error {
	ctx := context.Background()
	admin, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		return err
	}
	iss, err := ciexample.NewIssuer("https://ci.example.internal")
	if err != nil {
		return err
	}
	if err := ciexample.Setup(ctx, admin, authPath, mount, iss); err != nil {
		return err
	}
	job, err := iss.JobToken(ciexample.Job{Repository: "acme/shop", Ref: "refs/heads/main", RunID: "42"}, time.Now())
	if err != nil {
		return err
	}
	creds, err := ciexample.RunPipeline(ctx, admin.Address(), authPath, mount, job)
	if err != nil {
		return err
	}
	v, err := admin.Logical().Write(mount+"/verify", map[string]interface{}{"key": creds.Key, "scope": "deploy:write", "audience": "deploy-api", "environment": "staging"})
	if err != nil {
		return err
	}
	fmt.Printf("job got leased key %s scopes=%v lease=%s (%s); verify active=%v\n",
		creds.KeyID, creds.Scopes, creds.LeaseID, creds.LeaseDuration, v.Data["active"])
	return nil
}
