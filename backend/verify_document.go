package backend

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// appendIntrospection writes the RFC 7662 document of a verify outcome:
// the same fields as verifyResponseData, encoded by hand because this runs
// on every gateway verify and encoding/json spends most of its time here on
// reflection and on sorting map keys.
func appendIntrospection(buf []byte, res record.VerifyResult) []byte {
	if !res.Active {
		buf = append(buf, `{"active":false,"code":`...)
		buf = appendJSONString(buf, res.Code)
		return append(buf, '}')
	}
	k, v := res.Key, res.Version
	buf = append(buf, `{"active":true,"aud":[`...)
	for i, a := range res.Role.Audiences {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, a)
	}
	buf = append(buf, `],"client":`...)
	buf = appendJSONString(buf, k.Client)
	buf = append(buf, `,"environment":`...)
	buf = appendJSONString(buf, k.Environment)
	if exp := res.Expiry(); !exp.IsZero() {
		buf = append(buf, `,"exp":`...)
		buf = strconv.AppendInt(buf, exp.Unix(), 10)
	}
	buf = append(buf, `,"iat":`...)
	buf = strconv.AppendInt(buf, v.CreatedAt.Unix(), 10)
	buf = append(buf, `,"key_id":`...)
	buf = appendJSONString(buf, k.KeyID)
	buf = append(buf, `,"role":`...)
	buf = appendJSONString(buf, k.Role)
	buf = append(buf, `,"scope":`...)
	buf = appendJSONString(buf, scopes.Join(res.EffectiveScopes))
	buf = append(buf, `,"state":`...)
	buf = appendJSONString(buf, v.State)
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendInt(buf, int64(v.Version), 10)
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string. Names and scopes are
// validated to a safe charset already; escaping anyway keeps the document
// valid whatever a stored record holds.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
			i++
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, `\ufffd`...)
			} else {
				buf = append(buf, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(buf, '"')
}

// documentBufs recycles encoding buffers across verifies.
var documentBufs = sync.Pool{New: func() interface{} { b := make([]byte, 0, 512); return &b }}
