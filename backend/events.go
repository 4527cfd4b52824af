package backend

import (
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// actorSystem is the actor of background work, which no request caused.
const actorSystem = "system"

// actorFromRequest is who made req: its Vault entity, or its token when it
// has none (root, a token without an identity).
func actorFromRequest(req *logical.Request) record.Actor {
	if req == nil {
		return record.Actor{Type: actorSystem}
	}
	a := record.Actor{EntityID: req.EntityID, DisplayName: req.DisplayName, Accessor: req.ClientTokenAccessor}
	if req.EntityID != "" {
		a.Type = "entity"
	} else {
		a.Type = "token"
	}
	return a
}

// eventFromRequest starts an event attributed to the request's caller.
func eventFromRequest(req *logical.Request, typ string) eventlog.Event {
	return eventlog.Event{Type: typ, Actor: actorFromRequest(req), RequestID: req.ID}
}

// systemEvent starts an event for background work.
func systemEvent(typ string) eventlog.Event {
	return eventlog.Event{Type: typ, Actor: record.Actor{Type: actorSystem}}
}
