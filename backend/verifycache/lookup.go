package verifycache

import "github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"

// Each lookup takes the loader that reads the record from storage; it runs
// only on a miss, without the cache's lock, and returns nil for a record
// that does not exist.

// Index returns a copy of the index entry of an HMAC, or nil.
func (c *Cache) Index(hmacHex string, loadIndex func() (*record.IndexEntry, error)) (*record.IndexEntry, error) {
	ie, ok, err := load(c, c.index, hmacHex, stripe(kindIndex, hmacHex, ""), func() (record.IndexEntry, bool, error) {
		ie, err := loadIndex()
		if err != nil || ie == nil {
			return record.IndexEntry{}, false, err
		}
		return *ie, true, nil
	})
	if err != nil || !ok {
		return nil, err
	}
	return &ie, nil
}

// Key returns a shared, read-only verify view of a key record (see
// verifyView), or nil.
func (c *Cache) Key(client, name string, loadKey func() (*record.Key, error)) (*record.Key, error) {
	k, _, err := load(c, c.keys, keyRef{client, name}, stripe(kindKey, client, name), func() (*record.Key, bool, error) {
		k, err := loadKey()
		if err != nil || k == nil {
			return nil, false, err
		}
		return verifyView(k), true, nil
	})
	return k, err
}

// Role returns a shared, read-only role, or nil.
func (c *Cache) Role(name string, loadRole func() (*record.Role, error)) (*record.Role, error) {
	r, _, err := load(c, c.roles, name, stripe(kindRole, name, ""), func() (*record.Role, bool, error) {
		r, err := loadRole()
		return r, r != nil, err
	})
	return r, err
}

// Client returns a shared, read-only client, or nil.
func (c *Cache) Client(name string, loadClient func() (*record.Client, error)) (*record.Client, error) {
	cl, _, err := load(c, c.clients, name, stripe(kindClient, name, ""), func() (*record.Client, bool, error) {
		cl, err := loadClient()
		return cl, cl != nil, err
	})
	return cl, err
}
