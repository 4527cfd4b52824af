// Package ratelimit enforces a role's rate_limit on verify: at most limit
// successful verifies per key within each fixed window of
// rate_limit_window.
//
// The state lives in memory on each node and is never written to storage,
// so the verify hot path costs one map lookup under a mutex and no I/O. The
// price is that the limit is per node: a cluster of n nodes admits up to
// n*limit per window, and a restart starts every window afresh. A fixed
// window (rather than a sliding one) keeps one small counter per key.
//
// Memory is bounded by the keys verified within their current window: the
// periodic usage flush calls Prune to drop ended windows, and a key that is
// revoked or purged is forgotten at once (KeyRevoked, Forget), since it
// never verifies again.
//
// A Limiter owns its mutex; every method is safe for concurrent use and
// none calls out while holding it. It is separate from the usage tracker
// because it decides admission, while the tracker only records what
// happened: the two share no state and no rule.
package ratelimit
