// Package detect finds suspicious verify traffic (SPEC §7) and bounds the
// size of alerts.
//
// What is detected, per node, from the outcome of every verify:
//
//   - verify_burst: more than verify_burst_threshold verifies of one key
//     within one window;
//   - failed_verify_burst: more than failed_verify_threshold not_found or
//     malformed answers within one window, mount-wide (someone guessing
//     keys), with the addresses the failures came from;
//   - forbidden_ip, forbidden_scope, forbidden_audience: a key presented
//     from outside its CIDRs, for scopes it does not hold, or to an
//     audience it is not for;
//   - new_address: a key with an established set of addresses (after 20
//     successful verifies) verified successfully from an address outside it.
//
// Counters live for one fixed window (the mount's alert_window), which the
// first verify after the previous window ended starts; they are then
// dropped. Within a window each kind of alert (per key, or the mount's
// failed_verify_burst) is raised once and later occurrences are counted
// into it while it waits to be stored; once it is handed over, the next
// occurrence raises a follow-up naming it (details "continues"), so every
// occurrence is in exactly one stored alert and a stored alert is never
// rewritten. Thresholds are read from the mount config by ThresholdsOf.
//
// Detection runs on verify's hot path, so it reads no storage and its
// memory is bounded: window counters for at most 10,000 keys, learned
// address sets (at most 16 addresses each) for the 25,000 keys verified
// most recently (an LRU, so keys verified later still learn), at most 8
// sources per guessing burst, and at most 1,000 alerts waiting to be
// stored, past which detections are counted as dropped. The backend's
// periodic tick (and a read of alerts, and the mount stopping) drains the
// alerts and outcome counts and stores them, with the log and the locks
// that storing needs; what it could not store it requeues. State is per
// node and lost on restart: that costs at most one missed window, never a
// false alert.
//
// A Detector owns its lock: Observe, Drain, Requeue and PeekOutcomes take
// it, nothing under it reads storage or waits, and it is released even if
// Observe panics (the request fails, the detector keeps serving). New
// builds every field, and Drain only swaps the buffers for new empty ones,
// so a drain, even before the first verify, never leaves a detector half
// built.
//
// Bound cuts an alert's message and details to fixed sizes, so that no
// alert, whatever it repeats and whenever it was stored, grows toward
// Vault's storage entry limit. The backend applies it to every alert it
// stores or reads.
//
// This package imports neither the backend nor the Vault SDK: it works on
// the record types (record.VerifyInput, record.VerifyResult, record.Alert,
// record.Config) and is tested alone.
package detect
