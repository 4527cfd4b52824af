// Package eventlog is the engine's lifecycle log (SPEC §7): an append-only,
// hash-chained record of every change to clients, roles, keys, approvals,
// leaks, alerts and signing keys, with its time, its actor (a Vault
// entity, a token without an entity, or "system" for background work), the
// Vault request id and non-secret identifiers. Vault's audit devices
// record API calls; this log also records the background work (rotation,
// retirement, expiry, purges) that no audit device sees, and it lives in
// the mount's own storage, so it moves and is backed up with the keys it
// describes.
//
// Why a hash chain: each entry's hash covers its sequence number, the
// previous entry's hash and its exact stored bytes (package hashchain), and
// a separate head record holds the newest sequence number and hash. Verify
// recomputes the chain, so editing, removing, reordering or renumbering any
// entry, or truncating the newest ones, is detected and located. That makes
// the log tamper-evident, not tamper-proof: whoever can write the mount's
// storage (Vault's barrier keys and storage backend) can rewrite the whole
// chain and its head consistently, drop the newest entries and roll the
// head back to match, or delete the log outright, and Verify cannot tell;
// comparing the head hash with a copy kept elsewhere (an export, a
// previous log/verify answer) can. The chain proves integrity, not
// completeness: it cannot show that an event which should have been
// appended was not. The log is append-only by construction
// (nothing here rewrites or deletes an entry) but nothing stops storage from
// doing so. Entries hold no key material: Event.MarshalJSON redacts
// key-shaped text from details, because an entry cannot later be removed
// without breaking the chain.
//
// The list of event types is in types.go, in one place, because entries
// outlive the code that wrote them: metrics and operators' tooling read the
// types back, so a type is added, never renamed.
//
// Who appends: API handlers (config, clients, roles, approvals, leaks, alert
// acknowledgements, token exchange, signing-key rotation) call Append once
// their change is stored; background ticks (scheduled rotation, retirement,
// expiry, purges, alert pruning) do the same as the "system" actor. A key
// change goes through the backend's WAL-ordered commit instead: the events
// are encoded first (Encode) and kept in the WAL entry, the key record is
// written, then each body is appended with AppendBody, so an interrupted
// commit can be finished later with exactly the entries it owed.
// AppendMissing is that later step: it appends, marked as recovered (with
// DetailRecovered and DetailOccurredAt), those of the bodies the log does
// not already hold, so a change is logged once however often its recovery
// runs. The backend decides when; this package only knows the log.
//
// Locking: a Log owns one mutex that serialises commits on this node (each
// takes the head, writes the waiting entries side by side, then moves the
// head once: appends that arrive during a commit go together in the next,
// so a burst does not queue two round trips an entry). It is held
// for storage I/O of the log only and never while calling out, so it is the
// innermost lock of the engine: callers may hold key, config or alert
// locks around Append. Reads (Head, Entry, Verify) take no lock: an entry
// at or below the head is never rewritten, and an entry past the head (left
// by a crash between the entry write and the head write) is not counted and
// is overwritten by the next append. Vault sends writes only to the active
// node, so one mutex per mount is enough.
//
// Storage layout (the format is fixed: existing mounts hold it):
//
//	log/head                  {"seq":N,"hash":"<hex>"}          (Head)
//	log/entries/%020d         {"seq":N,"prev":"<hex>","hash":"<hex>","event":{...}}  (Entry)
//
// The event is kept as the raw bytes appended, so the hash is recomputed over
// what was written, not over a re-encoding. The first entry's prev is
// hashchain.Genesis. An entry above the size bound given to New is refused
// rather than handed to storage.
package eventlog
