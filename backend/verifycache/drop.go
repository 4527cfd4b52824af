package verifycache

// Each Drop removes one entry and fences fills of it that are in flight
// (see the generation rule in the package doc). Writers call it while they
// still hold the record's lock.

// DropIndex drops the index entry of an HMAC.
func (c *Cache) DropIndex(hmacHex string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.Remove(hmacHex)
	c.gen[stripe(kindIndex, hmacHex, "")]++
}

// DropKey drops a key record.
func (c *Cache) DropKey(client, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys.Remove(keyRef{client, name})
	c.gen[stripe(kindKey, client, name)]++
}

// DropRole drops a role.
func (c *Cache) DropRole(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roles.Remove(name)
	c.gen[stripe(kindRole, name, "")]++
}

// DropClient drops a client.
func (c *Cache) DropClient(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clients.Remove(name)
	c.gen[stripe(kindClient, name, "")]++
}

// Purge empties every table and fences every fill in flight.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.Purge()
	c.keys.Purge()
	c.roles.Purge()
	c.clients.Purge()
	for i := range c.gen {
		c.gen[i]++
	}
}
