// Package logtree keeps a Merkle tree over the lifecycle log (package
// eventlog) and signs checkpoints of it, in the manner of Certificate
// Transparency (RFC 9162 §2.1): leaf n is SHA-256(0x00 || chain hash of
// entry n+1), an inner node SHA-256(0x01 || left || right). The hashing and
// the proofs come from golang.org/x/mod/sumdb/tlog (the Go checksum
// database's tree, the same construction), the checkpoint text from the
// C2SP tlog-checkpoint format (github.com/transparency-dev/formats) and its
// Ed25519 signature from golang.org/x/mod/sumdb/note, so an auditor checks
// them with any implementation of those formats.
//
// Why a tree beside the hash chain: the chain proves the log was not altered
// only to someone who re-reads all of it. A signed checkpoint (size, root)
// kept by an auditor lets them check later, with proofs whose size grows
// with log(N), that an entry is in the log (inclusion) and that today's log
// still begins with exactly the log they saw (consistency): a rewrite of the
// whole chain, which Verify cannot notice, no longer matches their root.
//
// Incremental verification: the tree grows by a background step that reads
// each new entry once, checks that it links to the entry before and that its
// hash covers its contents, and only then adds it. The tree's size is thus
// also the point up to which the chain has been verified, and extending it
// costs the new entries only. A broken link stops the tree at the entry
// before it and is reported (Progress.BrokenAt); checkpoints stop advancing
// until the log is repaired, because signing a broken log would vouch for it.
//
// Storage layout:
//
//	log/tree/state           {"size":N,"last_hash":"<hex>",...}  (State)
//	log/tree/hashes/%012d    page p: stored hashes 256p .. 256p+255, 32 bytes each
//	log/checkpoint/key       the Ed25519 signing key in note format (never returned)
//	log/checkpoint/latest    the newest signed checkpoint (Checkpoint)
//
// The stored hashes are tlog's: the leaf hash and each completed subtree
// hash, about two per entry, indexed by tlog.StoredHashIndex. They are kept
// for the life of the mount (64 bytes an entry), also for entries removed by
// archival, so every checkpoint ever issued stays provable.
//
// Locking: a Tree's mutex serialises growth and signing (the periodic step
// and an on-demand checkpoint). Proofs read only hashes at or below the
// stored size, which are never rewritten, and take no lock.
package logtree
