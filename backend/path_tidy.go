package backend

import (
	"context"
	"fmt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathTidyHelpSyn = `Purge dead leased keys now, as the periodic function does.`
const pathTidyHelpDesc = `
Leased keys (from creds/) that have been dead - revoked, or past their
expiry - for longer than the config's leased_key_retention (default 7d) are
purged: their key record and verify index entries are deleted, so they leave
the inventory, the client's revocation list and the metrics' key counts, and
verify answers not_found for them. Their history stays in the lifecycle log:
key.issued, key.revoked and a keys.purged entry listing the purged key ids.
Keys that are not leased are never purged.

The periodic function does this about once a minute; tidy runs the same pass
now, for at most max_keys keys within a bounded time, and answers how many
keys it purged ("purged") and how many dead keys past the retention remain
("remaining_due": call again while it is above 0). With
leased_key_retention=0 nothing is ever purged.
`

func (b *apikeysBackend) pathTidy() []*framework.Path {
	return []*framework.Path{{
		Pattern: "tidy$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "tidy",
			OperationSuffix: "leased-keys",
		},
		Fields: map[string]*framework.FieldSchema{
			"max_keys": {
				Type:        framework.TypeInt,
				Description: fmt.Sprintf("Most dead leased keys to purge in this call, 1 to %d (default %d). A call also stops after %s; call again while remaining_due is above 0.", maxTidyKeys, purgeTickMaxKeys, purgeTickBudget),
				Default:     purgeTickMaxKeys,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathTidyWrite, Responses: okResponse(tidyResponseFields)},
		},
		HelpSynopsis:    pathTidyHelpSyn,
		HelpDescription: pathTidyHelpDesc,
	}}
}

func (b *apikeysBackend) pathTidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	maxKeys := d.Get("max_keys").(int)
	if maxKeys < 1 || maxKeys > maxTidyKeys {
		return nil, userErrorf("max_keys must be between 1 and %d (got %d)", maxTidyKeys, maxKeys)
	}
	st, err := b.runLeasePurge(ctx, req.Storage, req, maxKeys)
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: map[string]interface{}{
		"purged":               st.purged,
		"remaining_due":        st.remaining,
		"leased_key_retention": record.Secs(st.retention),
		"tracked_leased_keys":  b.sched.purge.Len(),
	}}
	if st.disabled {
		resp.AddWarning("leased_key_retention is 0: dead leased keys are kept forever and nothing was purged; set it in config to purge them")
	}
	if st.leftover {
		resp.AddWarning(fmt.Sprintf("stopped after max_keys or %s with %d dead leased keys still due; call tidy again or let the periodic function continue", purgeTickBudget, st.remaining))
	}
	if b.sched.rebuild.Running() {
		resp.AddWarning("the mount is still loading its schedules after a restart; dead leased keys not yet loaded are purged by later passes")
	}
	return resp, nil
}

var tidyResponseFields = map[string]*framework.FieldSchema{
	"purged":               field(framework.TypeInt, "Leased keys purged by this call."),
	"remaining_due":        field(framework.TypeInt, "Leased keys still due; call again while above 0."),
	"leased_key_retention": field(framework.TypeDurationSecond, "Retention in seconds of revoked leased keys."),
	"tracked_leased_keys":  field(framework.TypeInt, "Leased keys queued in memory for the purge: those dead, or dying, within an hour or two of the retention's end (the rest wait in storage)."),
}
