// Package record is the engine's record model: the records the mount keeps
// in Vault storage (Key and its KeyVersions, Role, Client, Config, Alert,
// the HMAC index entry), their states, and the rules that follow from a
// record alone.
//
// A record is plain data with JSON tags; those tags are the storage format,
// so a field is added, never renamed, and zero values must decode to what an
// older record meant. DecodeConfig exists because a plain json.Unmarshal into
// the defaults would not read a stored config back exactly as written.
//
// The rules here are pure functions of a record and a time: the lifecycle of
// a key's versions (activate, stage, promote, roll back, retire, revoke,
// trim), when a key is next due for rotation and what happens to a previous
// version at the end of its grace (DueAt, DecideGrace), the ttl a reader such
// as Vault Agent may be given (AgentTTL), a role's effective rotation and
// grace under the mount's risk tiers, and validation of names, CIDRs,
// environments, roles and config. The verify outcomes (the Code* constants,
// VerifyInput, VerifyResult) are listed here once because verify, usage,
// metrics, alerts and token exchange all speak them.
//
// Nothing in this package reads storage, takes a lock or knows about Vault
// requests: the backend package loads and commits records under its locks
// and calls these rules, so they can be tested with a fixed time and no
// mount.
package record
