package backend

import (
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
)

// Response schemas of the records several paths answer with (a key, a
// role, a client), so the OpenAPI document describes what each path
// returns. Types are the rendered ones (render.go): times are RFC 3339
// strings, configured durations integer seconds.

func field(t framework.FieldType, desc string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: t, Description: desc}
}

func okResponse(fields map[string]*framework.FieldSchema) map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: fields}}}
}

func noContentResponse() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusNoContent: {{Description: "No Content"}}}
}

const actorDesc = "Who did it: type, entity_id, display_name and accessor of the token."

func keyResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"key":                field(framework.TypeString, "The key's current secret; only on issue, rotation and reads of retrievable keys."),
		"key_id":             field(framework.TypeString, "Stable identifier of the key (kid_...), safe to log."),
		"client":             field(framework.TypeString, "Client that owns the key."),
		"name":               field(framework.TypeString, "Name of the key within its client."),
		"role":               field(framework.TypeString, "Role the key was issued under."),
		"owner":              field(framework.TypeString, "Owner of the key's client."),
		"environment":        field(framework.TypeString, "Environment the key is valid in."),
		"purpose":            field(framework.TypeString, "What the key is for, as given at issue."),
		"metadata":           field(framework.TypeSlice, "User metadata given at issue (key=value pairs)."),
		"scopes":             field(framework.TypeStringSlice, "Scopes requested for the key."),
		"effective_scopes":   field(framework.TypeStringSlice, "Scopes granted: requested scopes allowed by the role."),
		"audiences":          field(framework.TypeStringSlice, "Audiences the key may be used for."),
		"state":              field(framework.TypeString, "Lifecycle state of the key (active, locked, expired, revoked, ...)."),
		"version":            field(framework.TypeInt, "Current version of the key."),
		"version_state":      field(framework.TypeString, "State of the version the operation acted on."),
		"versions":           field(framework.TypeSlice, "The key's versions with their state and times."),
		"leased":             field(framework.TypeBool, "Whether the key was issued as a leased credential (creds path)."),
		"retrievable":        field(framework.TypeBool, "Whether the current secret can be read back."),
		"automatic_rotation": field(framework.TypeBool, "Whether the key is rotated automatically."),
		"rotation_period":    field(framework.TypeDurationSecond, "Rotation period in seconds (0: none)."),
		"rotation_schedule":  field(framework.TypeString, "Cron schedule of rotations, if any."),
		"ttl":                field(framework.TypeDurationSecond, "Seconds until a reader should read the key again."),
		"created_at":         field(framework.TypeString, "When the key was issued (RFC 3339)."),
		"expires_at":         field(framework.TypeString, "When the key expires (RFC 3339); null if it does not."),
		"last_rotated_at":    field(framework.TypeString, "When the key was last rotated (RFC 3339)."),
		"next_rotation_at":   field(framework.TypeString, "When the key is next due for rotation (RFC 3339)."),
		"last_used_at":       field(framework.TypeString, "When the key was last verified (RFC 3339); null if never."),
		"issued_by":          field(framework.TypeMap, actorDesc),
		"request_id":         field(framework.TypeString, "Vault request id of the issuing request."),
		"approval_id":        field(framework.TypeString, "Approval request used to issue the key, if any."),
		"usage":              field(framework.TypeMap, "Recent use: verify counts and recent sources."),
		// per-key controls (key_controls.go, key_reissue.go)
		"disabled":        field(framework.TypeBool, "Whether the key is disabled (verify answers disabled until it is enabled)."),
		"disabled_at":     field(framework.TypeString, "When the key was disabled (RFC 3339); only while disabled."),
		"disabled_reason": field(framework.TypeString, "Why the key was disabled; only while disabled."),
		"disabled_by":     field(framework.TypeMap, actorDesc),
		"predecessors":    field(framework.TypeStringSlice, "Key ids of the revoked keys this name held before it was re-issued, oldest first."),
	}
}

func keyRevokeResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"key_id":           field(framework.TypeString, "Stable identifier of the key."),
		"client":           field(framework.TypeString, "Client that owns the key."),
		"name":             field(framework.TypeString, "Name of the key within its client."),
		"role":             field(framework.TypeString, "Role the key was issued under."),
		"state":            field(framework.TypeString, "State of the key after the revocation."),
		"revoked_versions": field(framework.TypeSlice, "Versions revoked by this request."),
	}
}

func roleResponseFields() map[string]*framework.FieldSchema {
	fields := roleBaseResponseFields()
	fields["verify_response_fields"] = field(framework.TypeStringSlice, "Private fields an active verify answer adds (owner, client_metadata, key_metadata, purpose).")
	return fields
}

func roleBaseResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name":                 field(framework.TypeString, "Name of the role."),
		"description":          field(framework.TypeString, "Description of the role."),
		"owner":                field(framework.TypeString, "Owner of the role."),
		"environment":          field(framework.TypeString, "Environment keys of this role are valid in."),
		"scopes":               field(framework.TypeStringSlice, "Scopes keys of this role may carry."),
		"audiences":            field(framework.TypeStringSlice, "Audiences keys of this role may be used for."),
		"allowed_client_types": field(framework.TypeStringSlice, "Client types that may hold keys of this role."),
		"bound_cidrs":          field(framework.TypeStringSlice, "Addresses keys of this role may be verified from."),
		"issue_bound_cidrs":    field(framework.TypeStringSlice, "Addresses keys of this role may be issued from."),
		"risk_tier":            field(framework.TypeString, "Risk tier of the role."),
		"requires_approval":    field(framework.TypeBool, "Whether issuing needs an approved request."),
		"retrievable":          field(framework.TypeBool, "Whether secrets can be read back; null when the client type decides."),
		"retrieval_cutoff":     field(framework.TypeString, "When retrieval was turned off (RFC 3339)."),
		"rotation_period":      field(framework.TypeDurationSecond, "Rotation period in seconds."),
		"rotation_schedule":    field(framework.TypeString, "Cron schedule of rotations."),
		"rotation_window":      field(framework.TypeDurationSecond, "Window in seconds a scheduled rotation may run in."),
		"grace_period":         field(framework.TypeDurationSecond, "Seconds a replaced version stays accepted."),
		"max_grace_period":     field(framework.TypeDurationSecond, "Upper bound in seconds of the grace period."),
		"ttl":                  field(framework.TypeDurationSecond, "Lease ttl in seconds of leased keys."),
		"max_ttl":              field(framework.TypeDurationSecond, "Maximum lease ttl in seconds of leased keys."),
		"key_lifetime":         field(framework.TypeDurationSecond, "Lifetime in seconds of keys (0: no expiry)."),
		"idle_timeout":         field(framework.TypeDurationSecond, "Seconds of non-use after which a key is locked."),
		"expiry_notice":        field(framework.TypeDurationSecond, "Seconds before a key's expiry that a key.expiring notice is logged (0: none)."),
		"max_keys_per_client":  field(framework.TypeInt, "Maximum keys of this role per client."),
		"rate_limit":           field(framework.TypeInt, "Verifications allowed per key per rate_limit_window."),
		"rate_limit_window":    field(framework.TypeDurationSecond, "Rate-limit window in seconds."),
		"created_at":           field(framework.TypeString, "When the role was created (RFC 3339)."),
		"updated_at":           field(framework.TypeString, "When the role was last written (RFC 3339)."),
	}
}

func clientResponseFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"name":                 field(framework.TypeString, "Name of the client."),
		"type":                 field(framework.TypeString, "Client type (internal, partner, ...)."),
		"description":          field(framework.TypeString, "Description of the client."),
		"owner":                field(framework.TypeString, "Owner of the client."),
		"contact":              field(framework.TypeString, "Contact of the client."),
		"metadata":             field(framework.TypeMap, "User metadata of the client."),
		"allowed_environments": field(framework.TypeStringSlice, "Environments the client may hold keys for."),
		"bound_cidrs":          field(framework.TypeStringSlice, "Addresses the client's keys may be verified from."),
		"rate_limit":           field(framework.TypeInt, "Verifies allowed per rate_limit_window, shared by all keys of the client (0: unlimited)."),
		"rate_limit_window":    field(framework.TypeDurationSecond, "Window of the client's rate_limit in seconds."),
		"status":               field(framework.TypeString, "Status of the client (active, locked, deprovisioned)."),
		"status_reason":        field(framework.TypeString, "Why the status was last changed."),
		"status_changed_at":    field(framework.TypeString, "When the status was last changed (RFC 3339)."),
		"status_changed_by":    field(framework.TypeMap, actorDesc),
		"created_at":           field(framework.TypeString, "When the client was created (RFC 3339)."),
		"created_by":           field(framework.TypeMap, actorDesc),
		"updated_at":           field(framework.TypeString, "When the client was last written (RFC 3339)."),
	}
	fields["unlock_requires_approval"] = field(framework.TypeBool, "Set when the client unlocks only with an approved unlock request (locked by a require_reapproval response).")
	return fields
}

func listResponse(what string) map[int][]framework.Response {
	return okResponse(map[string]*framework.FieldSchema{
		"keys": field(framework.TypeStringSlice, "Names of the "+what+"."),
	})
}

// rawResponse declares an answer sent as a raw HTTP body (logical.HTTPRawBody):
// it has no fields to declare, so the description says what the body is.
func rawResponse(desc string) map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{Description: desc}}}
}
