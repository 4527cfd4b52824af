package backend

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// issueInput is a validated-shape issuance request.
type issueInput struct {
	clientName  string
	name        string
	roleName    string
	scopes      []string
	scopesGiven bool
	purpose     string
	metadata    map[string]string
	approvalID  string
	// expiresAt, when set, is the key's hard expiry (zero: none).
	expiresAt *time.Time
}

// issueKey checks an issuance against the client and role policy and, if it
// passes, creates the key. User errors come back as 400 responses and store
// nothing.
func (b *apikeysBackend) issueKey(ctx context.Context, req *logical.Request, in issueInput) (*logical.Response, error) {
	if in.roleName == "" {
		return nil, userErrorf("role is required: name the role to issue key %s/%s under", in.clientName, in.name)
	}
	if err := record.ValidateName("role", in.roleName); err != nil {
		return nil, userErrorf("%s", err.Error())
	}
	// Issuances to one client run side by side: each holds the client's
	// lock shared, which excludes a concurrent de-provisioning or lock.
	// Under a role with max_keys_per_client the count and the new key must
	// not interleave with another issuance to the client, so such an
	// issuance holds it exclusively; it learns that under the role's read
	// lock, having written nothing, and starts over.
	resp, err := b.issueKeyLocked(ctx, req, in, false)
	if errors.Is(err, errClientLockNeeded) {
		resp, err = b.issueKeyLocked(ctx, req, in, true)
	}
	return resp, err
}

// errClientLockNeeded stops an issuance holding the client's lock shared
// under a role that counts the client's keys (issueKey starts it over).
var errClientLockNeeded = errors.New("issuance under max_keys_per_client needs the client's lock exclusively")

// issueKeyLocked is issueKey under its locks: the client's (exclusive or
// shared), the key's and the role's read lock.
func (b *apikeysBackend) issueKeyLocked(ctx context.Context, req *logical.Request, in issueInput, exclusive bool) (*logical.Response, error) {
	clk := b.locks.client(in.clientName)
	if exclusive {
		clk.Lock()
		defer clk.Unlock()
	} else {
		clk.RLock()
		defer clk.RUnlock()
	}
	klock := b.locks.key(in.clientName, in.name)
	klock.Lock()
	defer klock.Unlock()
	defer b.locks.rlockRole(in.roleName)()

	s := req.Storage
	cfg, err := b.config(ctx, s)
	if err != nil {
		return nil, err
	}
	client, role, err := b.issueTarget(ctx, s, in.clientName, in.roleName)
	if err != nil {
		return nil, err
	}
	if role.MaxKeysPerClient > 0 && !exclusive {
		return nil, errClientLockNeeded
	}
	var existing *record.Key
	if !b.cache.verify.TakeKeyAbsent(req.ID, in.clientName, in.name) {
		if existing, err = b.getKey(ctx, s, in.clientName, in.name); err != nil {
			return nil, err
		}
	}
	if existing != nil && !existing.Revoked {
		return nil, userErrorf("key %s/%s already exists; rotate it at keys/%s/%s/rotate or choose a new name", in.clientName, in.name, in.clientName, in.name)
	}
	// A revoked key's name is re-issued: a new key takes it, the revoked
	// one is archived (key_reissue.go).
	if err := checkIssuePolicy(role, client, req); err != nil {
		return nil, err
	}
	keyScopes, err := keyScopesFor(role, in.scopes, in.scopesGiven)
	if err != nil {
		return nil, err
	}
	if role.MaxKeysPerClient > 0 {
		n, err := b.countClientKeysUnderRole(ctx, s, in.clientName, role.Name)
		if err != nil {
			return nil, err
		}
		if n >= role.MaxKeysPerClient {
			return nil, userErrorf("client %q already holds %d key(s) under role %q, its max_keys_per_client; revoke one first", in.clientName, n, role.Name)
		}
	}
	if !role.RequiresApproval && in.approvalID != "" {
		// Recording an approval that was never checked would show an
		// auditor a separation of duties that did not happen.
		return nil, userErrorf("role %q does not require approval; omit approval_id", role.Name)
	}
	// The approval is reserved now, bound to the key before its commit and
	// marked used only after it (approval.go), so a failed issuance does
	// not use it up.
	var approval *approvalUse
	if role.RequiresApproval {
		a, err := b.reserveApproval(ctx, req, approvalTarget{client: in.clientName, role: in.roleName, name: in.name, approvalID: in.approvalID})
		if err != nil {
			return nil, err
		}
		defer a.release()
		approval = a
	}

	k, plaintext, err := b.newKey(ctx, req, cfg, role, client, in.name, keyScopes, role.RetrievableFor(client.Type))
	if err != nil {
		return nil, err
	}
	k.Purpose, k.Metadata = in.purpose, in.metadata
	now := k.CreatedAt
	if role.KeyLifetime > 0 {
		k.ExpiresAt = now.Add(role.KeyLifetime)
	}
	if in.expiresAt != nil {
		if err := issueExpiry(role, k, *in.expiresAt); err != nil {
			return nil, err
		}
	}
	k.NextRotationAt = role.RotationPolicy(cfg).Next(now)
	if approval != nil {
		k.ApprovalID, k.Versions[0].ApprovalID = in.approvalID, in.approvalID
		if err := approval.bind(ctx, s, k.KeyID, 0); err != nil {
			return nil, err
		}
	}
	ev := issuedEvent(req, k)
	if existing != nil {
		if err := b.archiveRevokedKey(ctx, s, existing, k); err != nil {
			return nil, err
		}
		ev.Type = eventlog.KeyReissued
		ev.Details["predecessor_key_id"] = existing.KeyID
	}
	if in.approvalID != "" {
		ev.Details["approval_id"] = in.approvalID
	}
	if err := b.commitKey(ctx, s, k, k.Versions, ev); err != nil {
		return nil, err
	}
	if approval != nil {
		if err := approval.complete(ctx, s, k); err != nil {
			return nil, err
		}
	}

	data := b.keyResponse(cfg, role, client, k, now)
	data["key"] = plaintext
	resp := &logical.Response{Data: data}
	if !k.Retrievable {
		resp.AddWarning(manualRotationWarning(k))
	}
	return resp, nil
}

// manualRotationWarning tells the issuer of a key that is not retrievable
// what that means for rotation (see record.AutoRotates).
func manualRotationWarning(k *record.Key) string {
	msg := "this key is not retrievable: hand it to the client now, it is not shown again. It is not rotated automatically, since nobody could read the new secret"
	if !k.NextRotationAt.IsZero() {
		msg += "; rotate it with keys/" + k.Client + "/" + k.Name + "/rotate by " + k.NextRotationAt.Format(time.RFC3339) +
			" and hand over the new secret (the old one stays accepted for the grace period), or it is reported overdue"
	}
	return msg
}

// newKey generates the first version of a new key and the key record
// around it, active at once but not yet stored. Only a retrievable key
// keeps its plaintext; the caller returns plaintext to the requester once.
func (b *apikeysBackend) newKey(ctx context.Context, req *logical.Request, cfg *record.Config, role *record.Role, client *record.Client, name string, keyScopes []string, retrievable bool) (*record.Key, string, error) {
	now := b.clock.Now()
	plaintext, hmacHex, err := b.generateKey(ctx, req.Storage, cfg, role.Environment)
	if err != nil {
		return nil, "", err
	}
	keyID, err := newKeyID()
	if err != nil {
		return nil, "", err
	}
	v := &record.KeyVersion{Version: 1, HMAC: hmacHex, CreatedAt: now}
	if retrievable {
		v.Secret = plaintext
	}
	k := &record.Key{
		KeyID:       keyID,
		Client:      client.Name,
		Name:        name,
		Role:        role.Name,
		Owner:       client.Owner,
		Scopes:      keyScopes,
		Environment: role.Environment,
		Retrievable: retrievable,
		IssuedBy:    actorFromRequest(req),
		RequestID:   req.ID,
		CreatedAt:   now,
		Versions:    []*record.KeyVersion{v},
	}
	k.Activate(v, now, 0)
	// The inventory's key_id lookup (keyid_index.go); written before the
	// commit, so a committed key always has its pointer.
	if err := b.putKeyIDPointer(ctx, req.Storage, k); err != nil {
		return nil, "", err
	}
	return k, plaintext, nil
}

// issuedEvent is the lifecycle-log entry of a new key.
func issuedEvent(req *logical.Request, k *record.Key) eventlog.Event {
	ev := eventFor(req, eventlog.KeyIssued, k, 1)
	ev.Details = map[string]string{"scopes": scopes.Join(k.Scopes), "environment": k.Environment}
	return ev
}

// issueTarget loads the client and the role of an issuance (managed or
// leased). A user error refuses it: the client is missing or not active, or
// the role is missing.
//
// Both come through the verify cache (verifycache), which saves an
// issuance two storage round trips: the caller holds the client's lock
// (read or write) and the role's read lock, which every writer of either
// record holds exclusively while it stores it and drops it from the cache,
// and a cached copy is never older than its last drop; another node's write
// drops it through Invalidate, and a new process starts with an empty
// cache. So what the cache returns here is what storage holds. The records
// are shared: read only.
func (b *apikeysBackend) issueTarget(ctx context.Context, s logical.Storage, clientName, roleName string) (*record.Client, *record.Role, error) {
	client, err := b.cache.verify.Client(clientName, func() (*record.Client, error) { return b.getClient(ctx, s, clientName) })
	if err != nil {
		return nil, nil, err
	}
	if client == nil {
		return nil, nil, userErrorf("client %q does not exist; create it first at clients/%s", clientName, clientName)
	}
	if client.Status != record.ClientActive {
		return nil, nil, userErrorf("client %q is %s; keys cannot be issued to it", clientName, client.Status)
	}
	role, err := b.cache.verify.Role(roleName, func() (*record.Role, error) { return b.getRole(ctx, s, roleName) })
	if err != nil {
		return nil, nil, err
	}
	if role == nil {
		return nil, nil, userErrorf("role %q does not exist; list roles with: vault list <mount>/roles", roleName)
	}
	return client, role, nil
}

// keyScopesFor returns the scopes a new key gets: all of its role's, or the
// requested subset of them. A user error refuses the request.
func keyScopesFor(role *record.Role, wanted []string, given bool) ([]string, error) {
	if !given {
		// A copy: the role may be the verify cache's shared record.
		return slices.Clone(role.Scopes), nil
	}
	if len(wanted) == 0 {
		return nil, userErrorf("scopes, when given, must list at least one scope of role %q (%s)", role.Name, scopes.Join(role.Scopes))
	}
	if err := scopes.ValidateAll(wanted); err != nil {
		return nil, userErrorf("scopes: %v", err)
	}
	if outside := scopes.Outside(wanted, role.Scopes); len(outside) > 0 {
		return nil, userErrorf("scopes %s are not allowed by role %q, which allows: %s", strings.Join(outside, ", "), role.Name, scopes.Join(role.Scopes))
	}
	return wanted, nil
}

// checkIssuePolicy applies the role's rules about who may get its keys and
// from where. It returns a user error naming the rule broken, or nil.
func checkIssuePolicy(role *record.Role, client *record.Client, req *logical.Request) error {
	if len(role.AllowedClientTypes) > 0 && !slices.Contains(role.AllowedClientTypes, client.Type) {
		return userErrorf("role %q issues keys only to %s clients; client %q is %s", role.Name, strings.Join(role.AllowedClientTypes, " or "), client.Name, client.Type)
	}
	if len(client.AllowedEnvironments) > 0 && !slices.Contains(client.AllowedEnvironments, role.Environment) {
		return userErrorf("client %q may hold keys only for environments %s; role %q is for %q", client.Name, strings.Join(client.AllowedEnvironments, ", "), role.Name, role.Environment)
	}
	if len(role.IssueBoundCIDRs) > 0 {
		remote := ""
		if req.Connection != nil {
			remote = req.Connection.RemoteAddr
		}
		if !record.IPAllowed(role.IssueBoundCIDRs, remote) {
			return userErrorf("role %q allows issuance only from %s; this request came from %q", role.Name, strings.Join(role.IssueBoundCIDRs, ", "), remote)
		}
	}
	return nil
}

func (b *apikeysBackend) countClientKeysUnderRole(ctx context.Context, s logical.Storage, client, role string) (int, error) {
	names, err := b.listClientKeys(ctx, s, client)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		k, err := b.getKey(ctx, s, client, name)
		if err != nil {
			return 0, err
		}
		if k != nil && k.Role == role && !k.Revoked && !k.Leased {
			n++
		}
	}
	return n, nil
}
