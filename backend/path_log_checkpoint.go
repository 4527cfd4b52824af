package backend

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/logtree"
)

const pathLogConfigHelpSyn = `Configure log checkpoints and retention.`
const pathLogConfigHelpDesc = `
"checkpoint_interval" is how often the periodic function signs a checkpoint
of the log when it has grown (default 1h, 1m to 720h). "retention" is how old
an entry must be before log/archive may remove it from storage (0, the
default, keeps every entry; otherwise at least 1m, and longer than
notifications' retry_window, or an endpoint still owed an archived entry
misses it).
`

const pathLogCheckpointHelpSyn = `Read or make a signed checkpoint of the lifecycle log.`
const pathLogCheckpointHelpDesc = `
A checkpoint is the log's size and Merkle tree root (RFC 9162), with the hash
of its newest entry and the time, signed with the mount's Ed25519 key (kept in
Vault) in the C2SP tlog-checkpoint note format. Keep a checkpoint: later,
log/proof/consistency proves that the log still begins with exactly the
entries it covered, and log/proof/inclusion that an entry is one of them.
"verifier_key" is the public key (note verifier format) to check signatures
with, offline.

The periodic function checks each new entry's hash chain link once, adds it
to the tree, and signs a checkpoint every checkpoint_interval (log/config)
when the log has grown. Writing here checks up to 50,000 new entries and signs
now; "pending" counts entries the tree has not reached yet. A chain that does
not verify stops the tree at the entry before the break ("broken_at").
`

const pathLogInclusionHelpSyn = `Prove that a log entry is in a checkpoint's tree.`
const pathLogInclusionHelpDesc = `
Returns the inclusion proof (RFC 9162 §2.1.3) of entry "seq" in the tree of
"size" entries (default: the latest checkpoint's size), with the leaf hash,
the root and, while it is still stored, the entry as stored, whose hash an
auditor recomputes. Hashes are base64.
`

const pathLogConsistencyHelpSyn = `Prove that the log extends an earlier checkpoint.`
const pathLogConsistencyHelpDesc = `
Returns the consistency proof (RFC 9162 §2.1.4) between the tree of "from"
entries (an earlier checkpoint's size) and the tree of "to" entries (default:
the latest checkpoint's size): it shows the log only grew. Hashes are base64.
`

// onDemandGrowBudget bounds the entries one checkpoint request checks.
const onDemandGrowBudget = 50000

func (b *apikeysBackend) pathLogCheckpoint() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "log/config$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "log-configuration",
			},
			Fields: map[string]*framework.FieldSchema{
				"checkpoint_interval": {Type: framework.TypeDurationSecond, Description: "How often a checkpoint is signed when the log has grown (1m to 720h; default 1h)."},
				"retention":           {Type: framework.TypeDurationSecond, Description: "How old an entry must be before log/archive may remove it (0: keep every entry; else at least 1m)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathLogConfigRead, Responses: okResponse(logConfigResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLogConfigWrite, Responses: okResponse(logConfigResponseFields)},
			},
			HelpSynopsis:    pathLogConfigHelpSyn,
			HelpDescription: pathLogConfigHelpDesc,
		},
		{
			Pattern: "log/checkpoint$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "log-checkpoint",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathLogCheckpointRead, Responses: okResponse(logCheckpointResponseFields)},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLogCheckpointWrite, Responses: okResponse(logCheckpointResponseFields)},
			},
			HelpSynopsis:    pathLogCheckpointHelpSyn,
			HelpDescription: pathLogCheckpointHelpDesc,
		},
		{
			Pattern: "log/proof/inclusion$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "prove",
				OperationSuffix: "log-inclusion",
			},
			Fields: map[string]*framework.FieldSchema{
				"seq":  {Type: framework.TypeInt, Description: "Sequence number of the entry.", Required: true},
				"size": {Type: framework.TypeInt, Description: "Size of the tree (a checkpoint's size); default: the latest checkpoint's."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLogInclusion, Responses: okResponse(logInclusionResponseFields)},
			},
			HelpSynopsis:    pathLogInclusionHelpSyn,
			HelpDescription: pathLogInclusionHelpDesc,
		},
		{
			Pattern: "log/proof/consistency$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "prove",
				OperationSuffix: "log-consistency",
			},
			Fields: map[string]*framework.FieldSchema{
				"from": {Type: framework.TypeInt, Description: "Size of the earlier tree (an earlier checkpoint's size).", Required: true},
				"to":   {Type: framework.TypeInt, Description: "Size of the later tree; default: the latest checkpoint's."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLogConsistency, Responses: okResponse(logConsistencyResponseFields)},
			},
			HelpSynopsis:    pathLogConsistencyHelpSyn,
			HelpDescription: pathLogConsistencyHelpDesc,
		},
	}
}

func logConfigData(c logConfig) map[string]interface{} {
	return map[string]interface{}{
		"checkpoint_interval": int64(c.CheckpointInterval / time.Second),
		"retention":           int64(c.Retention / time.Second),
	}
}

func (b *apikeysBackend) pathLogConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	c, err := b.logConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: logConfigData(c)}, nil
}

func (b *apikeysBackend) pathLogConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	c, err := b.logConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if raw, ok := d.GetOk("checkpoint_interval"); ok {
		v := time.Duration(raw.(int)) * time.Second
		if v < minCheckpointInterval || v > maxCheckpointInterval {
			return nil, userErrorf("checkpoint_interval must be between %s and %s (got %s)", minCheckpointInterval, maxCheckpointInterval, v)
		}
		c.CheckpointInterval = v
	}
	if raw, ok := d.GetOk("retention"); ok {
		v := time.Duration(raw.(int)) * time.Second
		if v != 0 && (v < minLogRetention || v > maxLogRetention) {
			return nil, userErrorf("retention must be 0 (keep every entry) or between %s and %s (got %s)", minLogRetention, maxLogRetention, v)
		}
		c.Retention = v
	}
	if err := putLogConfig(ctx, req.Storage, c); err != nil {
		return nil, err
	}
	ev := eventFromRequest(req, eventlog.LogConfigUpdated)
	ev.Details = map[string]string{"checkpoint_interval": c.CheckpointInterval.String(), "retention": c.Retention.String()}
	if err := b.log.Append(ctx, req.Storage, ev); err != nil {
		return nil, err
	}
	return &logical.Response{Data: logConfigData(c)}, nil
}

func (b *apikeysBackend) pathLogCheckpointRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cp, err := b.tree.Latest(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cp == nil {
		return nil, userErrorf("no checkpoint has been signed yet: the periodic function signs one, or vault write -f %slog/checkpoint", req.MountPoint)
	}
	return b.checkpointResponse(ctx, req.Storage, cp)
}

func (b *apikeysBackend) pathLogCheckpointWrite(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if _, err := b.tree.Grow(ctx, req.Storage, onDemandGrowBudget); err != nil {
		return nil, err
	}
	cp, err := b.tree.Sign(ctx, req.Storage, b.clock.Now())
	if errors.Is(err, logtree.ErrEmpty) {
		return nil, userErrorf("%s", err.Error())
	}
	if err != nil {
		return nil, err
	}
	return b.checkpointResponse(ctx, req.Storage, cp)
}

func (b *apikeysBackend) checkpointResponse(ctx context.Context, s logical.Storage, cp *logtree.Checkpoint) (*logical.Response, error) {
	vkey, origin, err := b.tree.VerifierKey(ctx, s)
	if err != nil {
		return nil, err
	}
	st, err := b.tree.State(ctx, s)
	if err != nil {
		return nil, err
	}
	head, err := b.log.Head(ctx, s)
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"checkpoint":    cp.Note,
		"size":          cp.Size,
		"root":          cp.Root,
		"chain_head":    cp.ChainHead,
		"time":          renderTime(cp.Time),
		"origin":        origin,
		"verifier_key":  vkey,
		"verified_size": st.Size,
		"pending":       head.Seq - min(head.Seq, st.Size),
	}
	if st.BrokenAt != 0 {
		data["broken_at"] = st.BrokenAt
		data["reason"] = st.Reason
	}
	return &logical.Response{Data: data}, nil
}

// treeSize resolves an optional size field: its value, or the latest
// checkpoint's size.
func (b *apikeysBackend) treeSize(ctx context.Context, s logical.Storage, d *framework.FieldData, name string) (uint64, error) {
	if raw, ok := d.GetOk(name); ok {
		v := raw.(int)
		if v < 1 {
			return 0, userErrorf("%s must be 1 or more (got %d)", name, v)
		}
		return uint64(v), nil
	}
	cp, err := b.tree.Latest(ctx, s)
	if err != nil {
		return 0, err
	}
	if cp == nil {
		return 0, userErrorf("%s is required until a checkpoint has been signed", name)
	}
	return cp.Size, nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64List(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// proofError turns a request beyond the tree into a 400 naming it.
func proofError(err error) error {
	if errors.Is(err, logtree.ErrBeyondTree) {
		return userErrorf("%s", err.Error())
	}
	return err
}

func (b *apikeysBackend) pathLogInclusion(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	seq := d.Get("seq").(int)
	if seq < 1 {
		return nil, userErrorf("seq must be a sequence number, 1 or more (got %d)", seq)
	}
	size, err := b.treeSize(ctx, req.Storage, d, "size")
	if err != nil {
		return nil, err
	}
	proof, err := b.tree.Inclusion(ctx, req.Storage, uint64(seq), size)
	if err != nil {
		return nil, proofError(err)
	}
	root, err := b.tree.Root(ctx, req.Storage, size)
	if err != nil {
		return nil, err
	}
	leaf, err := b.tree.LeafHash(ctx, req.Storage, uint64(seq))
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"seq":        seq,
		"leaf_index": seq - 1,
		"tree_size":  size,
		"leaf_hash":  b64(leaf),
		"root":       b64(root),
		"proof":      b64List(proof),
	}
	raw, err := b.log.RawEntry(ctx, req.Storage, uint64(seq))
	if err != nil {
		return nil, err
	}
	if raw != nil {
		data["entry"] = string(raw)
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathLogConsistency(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	from := d.Get("from").(int)
	if from < 1 {
		return nil, userErrorf("from must be a tree size, 1 or more (got %d)", from)
	}
	to, err := b.treeSize(ctx, req.Storage, d, "to")
	if err != nil {
		return nil, err
	}
	proof, err := b.tree.Consistency(ctx, req.Storage, uint64(from), to)
	if err != nil {
		return nil, proofError(err)
	}
	oldRoot, err := b.tree.Root(ctx, req.Storage, uint64(from))
	if err != nil {
		return nil, err
	}
	newRoot, err := b.tree.Root(ctx, req.Storage, to)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"from":      from,
		"to":        to,
		"from_root": b64(oldRoot),
		"to_root":   b64(newRoot),
		"proof":     b64List(proof),
	}}, nil
}

var logConfigResponseFields = map[string]*framework.FieldSchema{
	"checkpoint_interval": field(framework.TypeDurationSecond, "How often a checkpoint is signed when the log has grown, in seconds."),
	"retention":           field(framework.TypeDurationSecond, "How old an entry must be before it may be archived away, in seconds (0: never)."),
}

var logCheckpointResponseFields = map[string]*framework.FieldSchema{
	"checkpoint":    field(framework.TypeString, "The signed checkpoint (C2SP tlog-checkpoint note): origin, size, base64 root, extension lines chain <hex> and time <RFC 3339>, signature."),
	"size":          field(framework.TypeInt, "Entries the checkpoint covers."),
	"root":          field(framework.TypeString, "Merkle tree root of those entries (base64)."),
	"chain_head":    field(framework.TypeString, "Hash chain hash of the checkpoint's last entry (hex)."),
	"time":          field(framework.TypeString, "When it was signed."),
	"origin":        field(framework.TypeString, "The log's name in checkpoints and its key."),
	"verifier_key":  field(framework.TypeString, "Public key to verify checkpoints with (note verifier key: origin+hash+base64 Ed25519)."),
	"verified_size": field(framework.TypeInt, "Entries checked and added to the tree so far."),
	"pending":       field(framework.TypeInt, "Entries appended that the tree has not reached yet."),
	"broken_at":     field(framework.TypeInt, "Entry where the chain stopped verifying, if it did."),
	"reason":        field(framework.TypeString, "Why the chain stopped verifying, if it did."),
}

var logInclusionResponseFields = map[string]*framework.FieldSchema{
	"seq":        field(framework.TypeInt, "Sequence number of the entry."),
	"leaf_index": field(framework.TypeInt, "Index of its leaf (seq - 1)."),
	"tree_size":  field(framework.TypeInt, "Size of the tree proved against."),
	"leaf_hash":  field(framework.TypeString, "SHA-256(0x00 || the entry's chain hash), base64."),
	"root":       field(framework.TypeString, "Root of the tree of tree_size entries, base64."),
	"proof":      field(framework.TypeStringSlice, "Inclusion proof: sibling hashes from the leaf up, base64."),
	"entry":      field(framework.TypeString, "The entry as stored (JSON: seq, prev, hash, event), while it is stored."),
}

var logConsistencyResponseFields = map[string]*framework.FieldSchema{
	"from":      field(framework.TypeInt, "Size of the earlier tree."),
	"to":        field(framework.TypeInt, "Size of the later tree."),
	"from_root": field(framework.TypeString, "Root of the earlier tree, base64 (compare with the checkpoint you kept)."),
	"to_root":   field(framework.TypeString, "Root of the later tree, base64."),
	"proof":     field(framework.TypeStringSlice, "Consistency proof, base64."),
}
