package backend

import (
	"sort"
	"strconv"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The parts of a verify answer a gateway acts on beyond the RFC 7662
// fields: what the key's role lets it see of owner and metadata, the
// rate-limit state, and when to retry a rate_limited key. Both forms render
// them from here so they cannot drift apart.

// resetSecs is the whole seconds until t, rounded up: a gateway that waits
// that long is past the window's end (RateLimit-Reset and Retry-After are
// delta-seconds).
func resetSecs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// addVerifyExtras adds the extra fields to the POST form's data.
func addVerifyExtras(data map[string]interface{}, res record.VerifyResult, now time.Time) {
	if !res.Active {
		if res.Code == record.CodeRateLimited {
			data["retry_after"] = resetSecs(res.RetryAfter)
		}
		return
	}
	k := res.Key
	for _, f := range res.Role.VerifyResponseFields {
		switch f {
		case "owner":
			data["owner"] = k.Owner
		case "purpose":
			data["purpose"] = k.Purpose
		case "key_metadata":
			data["key_metadata"] = nonNilMap(k.Metadata)
		case "client_metadata":
			if res.Client != nil {
				data["client_metadata"] = nonNilMap(res.Client.Metadata)
			}
		}
	}
	if r := res.Rate; r.Limit > 0 {
		data["rate_limit"] = map[string]interface{}{
			"limit": r.Limit, "remaining": r.Remaining, "reset": resetSecs(r.Reset.Sub(now)),
		}
	}
}

// appendVerifyExtras adds the same fields to the GET form's document; buf
// ends inside the object (the caller closes it).
func appendVerifyExtras(buf []byte, res record.VerifyResult, now time.Time) []byte {
	if !res.Active {
		if res.Code == record.CodeRateLimited {
			buf = append(buf, `,"retry_after":`...)
			buf = strconv.AppendInt(buf, resetSecs(res.RetryAfter), 10)
		}
		return buf
	}
	k := res.Key
	for _, f := range res.Role.VerifyResponseFields {
		switch f {
		case "owner":
			buf = append(buf, `,"owner":`...)
			buf = appendJSONString(buf, k.Owner)
		case "purpose":
			buf = append(buf, `,"purpose":`...)
			buf = appendJSONString(buf, k.Purpose)
		case "key_metadata":
			buf = append(buf, `,"key_metadata":`...)
			buf = appendJSONMap(buf, k.Metadata)
		case "client_metadata":
			if res.Client != nil {
				buf = append(buf, `,"client_metadata":`...)
				buf = appendJSONMap(buf, res.Client.Metadata)
			}
		}
	}
	if r := res.Rate; r.Limit > 0 {
		buf = append(buf, `,"rate_limit":{"limit":`...)
		buf = strconv.AppendInt(buf, int64(r.Limit), 10)
		buf = append(buf, `,"remaining":`...)
		buf = strconv.AppendInt(buf, int64(r.Remaining), 10)
		buf = append(buf, `,"reset":`...)
		buf = strconv.AppendInt(buf, resetSecs(r.Reset.Sub(now)), 10)
		buf = append(buf, '}')
	}
	return buf
}

// appendJSONMap appends m as a JSON object with sorted keys.
func appendJSONMap(buf []byte, m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	buf = append(buf, '{')
	for i, n := range names {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, n)
		buf = append(buf, ':')
		buf = appendJSONString(buf, m[n])
	}
	return append(buf, '}')
}

// rateLimitHeaders are the standard RateLimit-* headers (and Retry-After
// on rate_limited) of a GET verify where a limit applied; nil otherwise.
func rateLimitHeaders(res record.VerifyResult, now time.Time) map[string][]string {
	if res.Rate.Limit == 0 {
		return nil
	}
	h := map[string][]string{
		"RateLimit-Limit":     {strconv.Itoa(res.Rate.Limit)},
		"RateLimit-Remaining": {strconv.Itoa(res.Rate.Remaining)},
		"RateLimit-Reset":     {strconv.FormatInt(resetSecs(res.Rate.Reset.Sub(now)), 10)},
	}
	if !res.Active && res.Code == record.CodeRateLimited {
		h["Retry-After"] = []string{strconv.FormatInt(resetSecs(res.RetryAfter), 10)}
	}
	return h
}

// verifyAnswerData is the POST form's answer: the introspection fields and
// the extras.
func verifyAnswerData(res record.VerifyResult, now time.Time) map[string]interface{} {
	data := verifyResponseData(res)
	addVerifyExtras(data, res, now)
	return data
}

// appendAnswer is the GET form's document: the introspection fields and the
// extras, in one object.
func appendAnswer(buf []byte, res record.VerifyResult, now time.Time) []byte {
	buf = appendIntrospection(buf, res)
	buf = appendVerifyExtras(buf[:len(buf)-1], res, now) // reopen the object
	return append(buf, '}')
}
