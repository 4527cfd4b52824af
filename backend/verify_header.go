package backend

import (
	"errors"
	"strings"
)

// verifyKeyHeader is the request header a GET verify reads the presented key
// from (the usual X-API-Key practice of API gateways). Vault hands a request
// header to a plugin only when the mount lists it in
// passthrough_request_headers, and audits it only when it is listed in
// sys/config/auditing/request-headers, so the key stays out of the URL, the
// audit log and the request data.
const verifyKeyHeader = "X-Api-Key"

var (
	errNoKeyHeader    = errors.New("no key header")
	errManyKeyHeaders = errors.New("more than one key header")
)

// keyFromHeaders returns the single value of the X-Api-Key header. HTTP header
// names are case-insensitive and Vault keeps the sender's spelling, so the
// name is matched without regard to case.
func keyFromHeaders(headers map[string][]string) (string, error) {
	var (
		key   string
		found int
	)
	for name, values := range headers {
		if !strings.EqualFold(name, verifyKeyHeader) {
			continue
		}
		for _, v := range values {
			key = v
			found++
		}
	}
	switch found {
	case 0:
		return "", errNoKeyHeader
	case 1:
		return key, nil
	default:
		return "", errManyKeyHeaders
	}
}
