package backend

// memoByName wraps a lookup by name so a request or sweep that meets the
// same client or role for many keys reads it once. Errors are not
// remembered: a later call tries again.
func memoByName[T any](get func(name string) (T, error)) func(name string) (T, error) {
	seen := map[string]T{}
	return func(name string) (T, error) {
		if v, ok := seen[name]; ok {
			return v, nil
		}
		v, err := get(name)
		if err == nil {
			seen[name] = v
		}
		return v, err
	}
}
