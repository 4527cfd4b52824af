// Package outbox delivers the mount's events to webhook endpoints, durably.
//
// The outbox is the lifecycle log. Every change the engine makes appends
// its log entries in the same crash-safe unit as the change (the WAL-ordered
// commit, or the recovery of an interrupted one), so an event exists exactly
// when its change committed: none is lost when Vault or the plugin dies right
// after the change, and none is invented for a change that did not happen.
// Delivery keeps, per endpoint, a cursor into that log instead of a copy of
// each event: what an endpoint still has to receive is the log after its
// cursor, plus a bounded set of failed deliveries waiting for a retry.
//
// Why a cursor rather than a queue of copies: an endpoint that is down for a
// day would otherwise make the mount store one record per event for it.
// Here, once an endpoint fails, only the oldest failed delivery is retried
// (with backoff) as a probe and the cursor stops; when the probe succeeds,
// everything waiting is retried at once and the cursor moves on. Storage per
// endpoint is one state record of bounded size whatever the backlog; events
// older than the retry window are dead-lettered as ranges of log sequence
// numbers, which a replay re-reads from the log.
//
// Delivery is at-least-once: an endpoint's state is written after each
// batch, so a crash re-sends the batch. Each event keeps one webhook-id
// (derived from its log entry's hash) across retries, replays and
// endpoints, so a receiver de-duplicates on it, as Standard Webhooks asks.
//
// Only the node that may write storage runs the engine (the backend starts it
// when the mount initializes there and stops it in Clean), so after a
// failover the new active node carries on from the stored cursors. Sends run
// in the engine's goroutine, never in a request or a tick: delivery cannot
// slow a verify, an issuance or a governance tick.
//
// The same follower also hands each alert to the response policies and each
// event to Vault's event bus (best effort), each with a cursor of its own.
package outbox
