// Package ci holds the pieces of the CI example (SPEC §5, §1 "CI
// pipelines"): Vault's JWT auth method stands in for a CI provider's OIDC
// issuer, a role binds claims of the job token, and a policy lets the job
// read one creds/ path of the apikeys mount. scripts/ci-example applies
// them; operators can apply them by hand, e.g.
//
//	vault policy write ci-shop-deploy bootstrap/ci/pipeline-policy.hcl
//	vault write auth/jwt/role/ci-shop-deploy @bootstrap/ci/jwt-role.json
//	vault write apikeys/clients/ci-shop @bootstrap/ci/apikeys-client.json
//	vault write apikeys/roles/ci-deploy @bootstrap/ci/apikeys-role.json
package ci

import _ "embed"

// PolicyName is the Vault policy the job's token gets.
const PolicyName = "ci-shop-deploy"

// JWTRoleName is the role of the JWT auth method the job logs in with.
const JWTRoleName = "ci-shop-deploy"

// Client and Role are the apikeys client and role of the pipeline.
const (
	Client = "ci-shop"
	Role   = "ci-deploy"
)

// Policy lets a job read leased keys of one client and role, nothing else.
//
//go:embed pipeline-policy.hcl
var Policy string

// JWTRole is the JWT auth role (JSON): which job tokens may log in.
//
//go:embed jwt-role.json
var JWTRole []byte

// APIKeysClient and APIKeysRole define the pipeline's client and role on
// the apikeys mount (JSON).
//
//go:embed apikeys-client.json
var APIKeysClient []byte

//go:embed apikeys-role.json
var APIKeysRole []byte
