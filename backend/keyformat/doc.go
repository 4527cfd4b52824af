// Package keyformat generates and parses the textual form of API keys.
//
// A key looks like
//
//	<prefix>_<env>_<random><checksum>
//
// for example "ak_prod_3kT...Zq9". The prefix and environment make a leaked
// key easy to attribute (and easy for secret scanners to match), the random
// part carries all of the entropy, and the fixed-width checksum lets clients,
// scanners and this plugin reject typos and garbage without a storage lookup,
// the same idea GitHub uses for its tokens.
//
// Everything here is pure logic: no storage, no clock, and randomness comes
// from an io.Reader supplied by the caller so tests can be deterministic.
package keyformat
