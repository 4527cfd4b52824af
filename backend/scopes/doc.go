// Package scopes implements the API permission strings attached to roles and
// keys, such as "orders:read", "orders:*", "billing:invoices:write" or "*".
//
// Segments are separated by ':'. A trailing "*" segment is a wildcard that
// matches anything below its parent; a lone "*" matches everything. Wildcards
// elsewhere ("ord*", "*:read") are rejected so that matching stays a simple,
// predictable prefix test and nobody is surprised by what a pattern grants.
//
// The functions here are pure and treat slices as read-only.
package scopes
