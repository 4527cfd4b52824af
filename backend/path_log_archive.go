package backend

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

const pathLogExportHelpSyn = `Export lifecycle-log entries exactly as stored.`
const pathLogExportHelpDesc = `
Returns up to "limit" entries (default 1000, at most 10000) after sequence
number "after" (default: from the first entry kept) as JSON lines, each the
stored entry (seq, prev, hash, event) byte for byte, so that an archive can be
checked later: its hashes recomputed, its tree root compared with a signed
checkpoint (scripts/log-verify). "next_after" continues the export while
there is more.
`

const pathLogArchiveHelpSyn = `Remove exported lifecycle-log entries older than the retention.`
const pathLogArchiveHelpDesc = `
Archives entries 1 to "through": they are removed from storage in the
background, and verification of what is kept (log/verify) starts after them.
"through_hash" must be the hash of entry "through" as the export holds it,
which shows the entries were exported. Every archived entry must be older
than log/config's retention and covered by a signed checkpoint (log/checkpoint),
so the archive plus what is kept still checks against every checkpoint ever
issued. The tree's hashes are kept, so inclusion and consistency proofs go on
working for archived entries.
`

// Bounds of log/export pages and of removal per tick.
const (
	defaultExportPage  = 1000
	maxExportPage      = 10000
	archivePruneBudget = 5000
)

func (b *apikeysBackend) pathLogArchive() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "log/export$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "export",
				OperationSuffix: "log",
			},
			Fields: map[string]*framework.FieldSchema{
				"after": {Type: framework.TypeString, Description: "Export entries after this sequence number (default: from the first entry kept)."},
				"limit": {Type: framework.TypeInt, Description: "Most entries to export, 1-10000 (default 1000).", Default: defaultExportPage},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLogExport, Responses: okResponse(logExportResponseFields)},
			},
			HelpSynopsis:    pathLogExportHelpSyn,
			HelpDescription: pathLogExportHelpDesc,
		},
		{
			Pattern: "log/archive$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "archive",
				OperationSuffix: "log",
			},
			Fields: map[string]*framework.FieldSchema{
				"through":      {Type: framework.TypeInt, Description: "Archive entries 1 to this sequence number.", Required: true},
				"through_hash": {Type: framework.TypeString, Description: "Hash of entry through, as the export holds it.", Required: true},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathLogArchiveWrite, Responses: okResponse(logArchiveResponseFields)},
			},
			HelpSynopsis:    pathLogArchiveHelpSyn,
			HelpDescription: pathLogArchiveHelpDesc,
		},
	}
}

func (b *apikeysBackend) pathLogExport(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	limit := d.Get("limit").(int)
	if limit < 1 || limit > maxExportPage {
		return nil, userErrorf("limit must be between 1 and %d (got %d)", maxExportPage, limit)
	}
	base, err := b.log.Base(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	after := base.Seq
	if raw := strings.TrimSpace(d.Get("after").(string)); raw != "" {
		v, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return nil, userErrorf("after must be 0 or a sequence number (got %q)", raw)
		}
		after = max(v, base.Seq)
	}
	head, err := b.log.Head(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	last := after
	for seq := after + 1; seq <= head.Seq && seq <= after+uint64(limit); seq++ {
		raw, err := b.log.RawEntry(ctx, req.Storage, seq)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			break // missing: log/verify says where and why
		}
		// Stored entries are compact JSON ended by a newline (Vault's JSON
		// encoder adds it); an altered one is exported as it is, for the
		// verifier to flag.
		out.Write(bytes.TrimRight(raw, "\n"))
		out.WriteByte('\n')
		last = seq
	}
	data := map[string]interface{}{
		"entries":  out.String(),
		"first":    min(after+1, last),
		"last":     last,
		"head_seq": head.Seq,
	}
	if base.Seq > 0 {
		data["archived_through"] = base.Seq
	}
	if last < head.Seq && last > after {
		data["next_after"] = last
	}
	return &logical.Response{Data: data}, nil
}

func (b *apikeysBackend) pathLogArchiveWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	through := d.Get("through").(int)
	throughHash := strings.TrimSpace(d.Get("through_hash").(string))
	if through < 1 {
		return nil, userErrorf("through must be a sequence number, 1 or more (got %d)", through)
	}
	if throughHash == "" {
		return nil, userErrorf("through_hash is required: the hash of entry %d as the export holds it", through)
	}
	cfg, err := b.logConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg.Retention == 0 {
		return nil, userErrorf("log/config retention is 0 (keep every entry): set a retention before archiving")
	}
	base, err := b.log.Base(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if uint64(through) <= base.Seq {
		return nil, userErrorf("entries up to %d are archived already (through must be above it)", base.Seq)
	}
	cp, err := b.tree.Latest(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cp == nil || cp.Size < uint64(through) {
		covered := uint64(0)
		if cp != nil {
			covered = cp.Size
		}
		return nil, userErrorf("through (%d) is past the latest signed checkpoint (%d entries): sign one first (vault write -f %slog/checkpoint)", through, covered, req.MountPoint)
	}
	rec, err := b.log.Entry(ctx, req.Storage, uint64(through))
	if err != nil && !errors.Is(err, eventlog.ErrUnreadable) {
		return nil, err
	}
	if rec == nil {
		return nil, userErrorf("entry %d (through) is not stored or not readable", through)
	}
	if subtle.ConstantTimeCompare([]byte(throughHash), []byte(rec.Hash)) != 1 {
		return nil, userErrorf("through_hash is not the hash of entry %d: export the entries first (log/export) and give the hash of the last one archived", through)
	}
	var ev struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(rec.Event, &ev); err != nil || ev.Time.IsZero() {
		return nil, userErrorf("entry %d has no readable time", through)
	}
	now := b.clock.Now()
	if cutoff := now.Add(-cfg.Retention); !ev.Time.Before(cutoff) {
		return nil, userErrorf("entry %d is from %s, within the retention (%s): entries before %s may be archived", through, renderTime(ev.Time), cfg.Retention, renderTime(cutoff))
	}
	// The entry first, then the base it announces: an interruption leaves
	// a logged archival an operator repeats, never an unlogged one.
	logged := eventFromRequest(req, eventlog.LogArchived)
	logged.Details = map[string]string{
		"through": strconv.Itoa(through), "through_hash": rec.Hash,
		"entries": strconv.FormatUint(uint64(through)-base.Seq, 10), "retention": cfg.Retention.String(),
	}
	if err := b.log.Append(ctx, req.Storage, logged); err != nil {
		return nil, err
	}
	if err := b.log.SetBase(ctx, req.Storage, eventlog.Base{Seq: uint64(through), Hash: rec.Hash}); err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"archived_through": through,
		"archived":         uint64(through) - base.Seq,
		"checkpoint_size":  cp.Size,
	}}, nil
}

// logArchiveTick removes archived entries in bounded steps.
func (b *apikeysBackend) logArchiveTick(ctx context.Context, req *logical.Request) error {
	_, err := b.log.PruneArchived(ctx, req.Storage, archivePruneBudget)
	return err
}

var logExportResponseFields = map[string]*framework.FieldSchema{
	"entries":          field(framework.TypeString, "The entries as stored, one JSON object a line."),
	"first":            field(framework.TypeInt, "Sequence number of the first entry exported."),
	"last":             field(framework.TypeInt, "Sequence number of the last entry exported."),
	"head_seq":         field(framework.TypeInt, "Sequence number of the newest entry."),
	"next_after":       field(framework.TypeInt, "after for the next page, while there is more."),
	"archived_through": field(framework.TypeInt, "Entries up to this one were archived and are no longer exported."),
}

var logArchiveResponseFields = map[string]*framework.FieldSchema{
	"archived_through": field(framework.TypeInt, "Entries up to this one are archived."),
	"archived":         field(framework.TypeInt, "Entries archived by this request."),
	"checkpoint_size":  field(framework.TypeInt, "Size of the latest checkpoint, which covers them."),
}
