package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// clientRateFrom reads a client's shared rate limit fields into c.
func clientRateFrom(d *framework.FieldData, c *record.Client) error {
	if v, ok := d.GetOk("rate_limit"); ok {
		c.RateLimit = v.(int)
	}
	if v, ok := d.GetOk("rate_limit_window"); ok {
		c.RateLimitWindow = time.Duration(v.(int)) * time.Second
	}
	if err := record.ValidateClientRate(c.RateLimit, c.RateLimitWindow); err != nil {
		return userErrorf("%s", err.Error())
	}
	return nil
}
