package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signatureVersion tags an HMAC-SHA256 signature; receivers skip versions
// they do not know, which leaves room for asymmetric signatures later.
const signatureVersion = "v1"

// Sign returns the webhook-signature header value: for each key,
// "v1," + base64(HMAC-SHA256(key, msgID + "." + unix seconds of ts + "." +
// body)), joined by single spaces. Several keys let a receiver switch
// secrets without missing a delivery: it accepts any one that matches.
// No keys give "", which every receiver rejects.
func Sign(keys [][]byte, msgID string, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var b strings.Builder
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(unix))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(signatureVersion)
		b.WriteByte(',')
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

// Headers returns the headers of one signed delivery: webhook-id,
// webhook-timestamp (unix seconds), webhook-signature and the JSON
// Content-Type. The same msgID must be sent on every attempt of a message,
// so receivers can drop duplicates.
func Headers(keys [][]byte, msgID string, ts time.Time, body []byte) map[string]string {
	return map[string]string{
		HeaderID:        msgID,
		HeaderTimestamp: strconv.FormatInt(ts.Unix(), 10),
		HeaderSignature: Sign(keys, msgID, ts, body),
		"Content-Type":  "application/json",
	}
}
