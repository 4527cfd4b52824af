package verifycache

// Absence notes carry one fact from a write's existence check to its
// handler: Vault asks the plugin whether the target exists (to choose
// between the create and update capabilities) and then sends the write
// itself, a second request with the same request id. Issuing a key reads
// the key record in both, and the second read is a storage round trip
// into Vault on the issuance path. A note lets the handler skip it, under
// the generation rule that makes fills safe: the note records the key's
// stripe generation from before the existence check's read, and the
// handler, holding the key's lock (so every local write of the key has
// dropped it, and other nodes' writes have arrived through Invalidate),
// trusts the note only if no drop of that stripe happened since. Anything
// doubtful (another name, a drop of any record sharing the stripe, a
// Purge, an evicted note) falls back to reading storage.

// maxAbsenceNotes bounds the notes kept: a note whose write never came
// (refused by an ACL after the existence check) is evicted in time.
const maxAbsenceNotes = 4096

// Fence is a key's stripe generation, read before a storage read of it.
type Fence struct{ gen uint64 }

type absence struct {
	key   keyRef
	fence Fence
}

// KeyFence returns the fence to take before reading key client/name.
func (c *Cache) KeyFence(client, name string) Fence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Fence{c.gen[stripe(kindKey, client, name)]}
}

// NoteKeyAbsent records, for the request token, that a read of key
// client/name begun at fence f found no record. An empty token notes
// nothing.
func (c *Cache) NoteKeyAbsent(token, client, name string, f Fence) {
	if token == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.absent.Add(token, absence{keyRef{client, name}, f})
}

// ForgetKeyAbsent drops the request token's note, if any.
func (c *Cache) ForgetKeyAbsent(token string) {
	if token == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.absent.Remove(token)
}

// TakeKeyAbsent consumes the request token's note and reports whether it
// shows key client/name absent with no drop of its stripe since. The
// caller holds the key's lock.
func (c *Cache) TakeKeyAbsent(token, client, name string) bool {
	if token == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.absent.Peek(token)
	if !ok {
		return false
	}
	c.absent.Remove(token)
	return a.key == keyRef{client, name} && c.gen[stripe(kindKey, client, name)] == a.fence.gen
}
