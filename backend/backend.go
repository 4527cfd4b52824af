// Package backend implements the apikeys secrets engine: a Vault logical
// backend that issues, rotates, verifies and revokes API keys.
package backend

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/logtree"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/outbox"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/signing"
)

// Version is the plugin's semantic version, stamped in at build time with
// -ldflags "-X github.com/apikeys/vault-plugin-secrets-apikeys/backend.Version=vX.Y.Z".
// Vault compares it with the version the plugin was registered under.
var Version = "v0.0.0-dev"

const backendHelp = `
The apikeys secrets engine issues, rotates, verifies and revokes API keys for
internal services and external partners.

Clients (API consumers) are written under "clients/", issuance templates and
policy under "roles/", and keys are issued at "keys/<client>/<name>". Keys are
stored only as an HMAC, rotate on a schedule with an overlap, and every action
is recorded in a tamper-evident lifecycle log ("log").
`

// apikeysBackend is the logical backend of one mount.
type apikeysBackend struct {
	*framework.Backend

	clock  clock.Clock
	logger hclog.Logger

	// locks serialise read-modify-write cycles of clients, roles and keys.
	locks lockSets
	// keyIDsDone caches that every key has its key-id pointer
	// (keyid_backfill.go), which is never undone.
	keyIDsDone atomic.Bool
	// tombstonesDone caches that every de-provisioned client has its
	// tombstone pointer (tombstone_index.go), which is never undone.
	tombstonesDone atomic.Bool
	// configMu serialises configuration writes, and role writes with them
	// (each is checked against the other); lock order: locks.go.
	configMu sync.Mutex
	// signing is this mount's token signing key set; it serialises its
	// own changes.
	signing *signing.Keys

	// log is the mount's lifecycle log; it serialises its own appends.
	log *eventlog.Log
	// tree is the log's Merkle tree and checkpoints (package logtree).
	tree *logtree.Tree
	// backendUUID is the mount's id from Vault, which names the log in
	// its checkpoints.
	backendUUID string

	cache *mountCache

	// commitHook, when set by a test, runs between the steps of commitKey
	// to simulate a crash there.
	commitHook commitHook

	// gov is the in-memory side of governance (alert detection buffers,
	// the governance state's lock and walkers); newBackend builds it.
	gov govRuntime

	// approvals serialises changes of approval requests and tracks the
	// ones in use on this node (approval.go); its zero value is ready.
	approvals approvals

	// responses is the automated response engine's state
	// (response_policy.go); its zero value is ready.
	responses responseEngine

	// rot is the scheduled-rotation engine's state (rotation.go).
	rot rotationState

	// sched queues keys for rotation and for the purge of dead leased
	// keys (schedules.go).
	sched keySchedules

	// guards bound the fields of each path, in the order of Paths
	// (limits.go).
	guards []*pathGuard

	// outbox delivers events to webhook endpoints, hands alerts to the
	// response policies and events to Vault's event bus (notifications.go).
	outbox *outbox.Engine
	// runOutbox runs the outbox in its own goroutine on the active node;
	// set by Factory (unit tests step it instead).
	runOutbox bool

	// ops is the bulk-operation engine's state (operations.go).
	ops bulkOps

	// retentionBatch overrides the records one retention pass of one kind
	// examines (retention_index.go); zero in production.
	retentionBatch int
	// liveKeyMetricsMax is the most keys a metrics read counts itself
	// (metrics.go).
	liveKeyMetricsMax int
	// overLiveMax is set once a metrics read found the mount over
	// liveKeyMetricsMax before any sweep pass had ended, so the reads
	// after it count no key until a pass ends.
	overLiveMax atomic.Bool

	// storage is the mount's storage, kept from Setup for clean, which
	// Vault calls without a request.
	storage logical.Storage
}

// Setup keeps the mount's storage view, then sets the framework up.
func (b *apikeysBackend) Setup(ctx context.Context, conf *logical.BackendConfig) error {
	b.storage = conf.StorageView
	b.backendUUID = conf.BackendUUID
	return b.Backend.Setup(ctx, conf)
}

// cleanFlushTimeout bounds the last flush when the mount stops.
const cleanFlushTimeout = 5 * time.Second

// clean runs when Vault stops the mount on this node (step-down, seal,
// unmount, plugin reload or upgrade): what verify saw since the last
// periodic flush and holds only in memory (usage, detected alerts, outcome
// counts) is written now, best effort, so the next active node's idle
// sweep, adoption checks, alerts and metrics see it. A node that may no
// longer write loses it, as a crash would.
func (b *apikeysBackend) clean(ctx context.Context) {
	b.outbox.Stop()
	b.stopOperations()
	if b.storage == nil || !b.writeSafe() {
		return
	}
	fctx, cancel := context.WithTimeout(context.Background(), cleanFlushTimeout)
	defer cancel()
	if b.cache.usage.Backlog() > 0 {
		if err := b.flushUsage(fctx, &logical.Request{Storage: b.storage}); err != nil {
			b.logger.Warn("could not flush verify usage as the mount stopped", "error", err)
		}
	}
	if err := b.flushDetections(fctx, b.storage); err != nil {
		b.logger.Warn("could not store detected alerts and verify counts as the mount stopped", "error", err)
	}
}

// Factory is the plugin's entry point: Vault calls it once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(clock.Real{})
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	b.logger = conf.Logger
	b.cache.usage.SetLogger(conf.Logger)
	b.outbox.SetLogger(conf.Logger)
	b.runOutbox = true
	b.ops.run = true
	return b, nil
}

// newBackend builds the backend with an injectable clock (tests pass a fake)
// and options (tests shrink or fake what background passes use).
func newBackend(c clock.Clock, opts ...backendOption) *apikeysBackend {
	b := &apikeysBackend{
		clock:  c,
		locks:  newLockSets(),
		cache:  newMountCache(),
		logger: hclog.NewNullLogger(),
		log:    eventlog.New(c, maxEntryBytes),
	}
	b.gov.det = detect.New(governance.NewAlertID)
	o := collectOptions(opts)
	b.liveKeyMetricsMax = liveKeyMetricsMax
	if o.liveKeyMetricsMax != 0 {
		b.liveKeyMetricsMax = o.liveKeyMetricsMax
	}
	initSchedules(b, o)
	b.retentionBatch = o.retentionBatch
	b.signing = signing.New(signing.Deps{
		Clock:         c,
		Log:           b.log,
		Config:        b.config,
		System:        record.Actor{Type: actorSystem},
		MaxEntryBytes: maxEntryBytes,
	})
	b.outbox = b.newOutbox(o.webhookSend)
	b.log.OnAppend(b.outbox.Wake)
	b.tree = logtree.New(b.log, b.logOrigin)
	b.gov.Runtime = governance.New(governance.Sources{Log: b.log, KeyPrefix: storageKeyPrefix, ClientPrefix: storageClientPrefix, Alerts: storedAlerts{}, Now: c.Now}, o.governance)
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    logical.TypeLogical,
		RunningVersion: Version,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{storageHMACSecret, outbox.EndpointPrefix},
			Unauthenticated: b.unauthenticatedPaths(),
		},
		// The framework matches a request against these patterns in order,
		// so the hot paths (verify, and info as the benchmark's floor) come
		// first. guardPaths bounds every field; HandleRequest refuses
		// unknown fields and values over their limit before any handler
		// runs (limits.go). Every answer is rendered alike (render.go).
		Paths: b.guardPaths(documentedPaths(renderedPaths(framework.PathAppend(
			b.pathVerify(),
			b.pathVerifyAuthorize(),
			b.pathInfo(),
			b.pathConfig(),
			b.pathClients(),
			b.pathClientRestriction(),
			b.pathRoles(),
			b.pathKeys(),
			b.pathKeyOps(),
			b.pathInventory(),
			b.pathLog(),
			b.pathLogCheckpoint(),
			b.pathLogArchive(),
			b.pathShortLived(),
			b.pathGovernance(),
			b.pathTidy(),
			b.pathNotifications(),
			b.pathOperations(),
		)))),
		Secrets:           b.leaseSecrets(),
		PeriodicFunc:      b.periodic,
		InitializeFunc:    b.initializeAll,
		Clean:             b.clean,
		Invalidate:        b.invalidate,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
	}
	return b
}

// invalidate drops cached state that another node of a cluster changed.
func (b *apikeysBackend) invalidate(_ context.Context, key string) {
	b.cache.invalidate(key)
	b.log.Invalidate(key)
	b.outbox.Invalidate(key)
	b.invalidateOperation(key)
}
