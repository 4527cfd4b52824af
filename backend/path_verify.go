package backend

import "github.com/hashicorp/vault/sdk/framework"

// pathVerify returns the verify endpoint's paths. Owned by the verify work.
func (b *apikeysBackend) pathVerify() []*framework.Path { return nil }
