package backend

// Storage layout of one mount. Plaintext key material never appears in a
// storage key: keys are addressed by client and name, and the verify index
// by the HMAC of the key.
const (
	storageConfig     = "config"
	storageHMACSecret = "hmac-secret"
)
