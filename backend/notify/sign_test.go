package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The vector of the reference library's TestWebhookSign (standard-webhooks
// libraries/go/webhook_test.go), shared by its other language libraries.
func TestSignSpecVector(t *testing.T) {
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func httpHeader(h map[string]string) http.Header {
	out := http.Header{}
	for k, v := range h {
		out.Set(k, v)
	}
	return out
}

func mustSecret(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := DecodeSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// The reference library checks the timestamp against the real clock, so
// these headers are stamped with time.Now.
func TestHeadersVerifyWithReferenceLibrary(t *testing.T) {
	secret, key := mustSecret(t)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"key.revoked","data":{"key_id":"k1"}}`)
	now := time.Now()
	h := Headers([][]byte{key}, "msg_1", now, body)
	if h["Content-Type"] != "application/json" || h[HeaderID] != "msg_1" {
		t.Fatalf("headers = %v", h)
	}
	if err := wh.Verify(body, httpHeader(h)); err != nil {
		t.Fatalf("reference Verify rejected our headers: %v", err)
	}

	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] = 'X'
	if err := wh.Verify(tampered, httpHeader(h)); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Fatalf("tampered body: err = %v, want ErrNoMatchingSignature", err)
	}

	other := Headers([][]byte{key}, "msg_2", now, body)
	other[HeaderID] = "msg_1" // signature of another message id
	if err := wh.Verify(body, httpHeader(other)); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Fatalf("other message id: err = %v, want ErrNoMatchingSignature", err)
	}

	old := Headers([][]byte{key}, "msg_1", now.Add(-10*time.Minute), body)
	if err := wh.Verify(body, httpHeader(old)); !errors.Is(err, standardwebhooks.ErrMessageTooOld) {
		t.Fatalf("old timestamp: err = %v, want ErrMessageTooOld", err)
	}
	future := Headers([][]byte{key}, "msg_1", now.Add(10*time.Minute), body)
	if err := wh.Verify(body, httpHeader(future)); !errors.Is(err, standardwebhooks.ErrMessageTooNew) {
		t.Fatalf("future timestamp: err = %v, want ErrMessageTooNew", err)
	}
	if err := wh.VerifyIgnoringTimestamp(body, httpHeader(old)); err != nil {
		t.Fatalf("old timestamp, signature alone: %v", err)
	}
}

// During a secret rotation both keys sign; a receiver holding either one
// accepts, a receiver holding neither does not.
func TestSignSeveralKeys(t *testing.T) {
	oldSecret, oldKey := mustSecret(t)
	newSecret, newKey := mustSecret(t)
	strangerSecret, _ := mustSecret(t)
	body := []byte(`{}`)
	h := Headers([][]byte{oldKey, newKey}, "msg_r", time.Now(), body)
	sigs := strings.Split(h[HeaderSignature], " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("signature header = %q, want two space-separated v1 signatures", h[HeaderSignature])
	}
	for _, s := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, httpHeader(h)); err != nil {
			t.Fatalf("receiver with one of the keys rejected: %v", err)
		}
	}
	wh, err := standardwebhooks.NewWebhook(strangerSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, httpHeader(h)); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Fatalf("receiver with another key: err = %v, want ErrNoMatchingSignature", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, ka := mustSecret(t)
	b, _ := mustSecret(t)
	if !strings.HasPrefix(a, SecretPrefix) || len(ka) != 32 {
		t.Fatalf("secret %d chars, key %d bytes; want prefix %q and 32 bytes", len(a), len(ka), SecretPrefix)
	}
	if a == b {
		t.Fatal("two new secrets are equal")
	}
}

func TestDecodeSecretRejects(t *testing.T) {
	valid, _ := mustSecret(t)
	for name, s := range map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(valid, SecretPrefix),
		"prefix only":    SecretPrefix,
		"not base64":     SecretPrefix + "!!!!notbase64!!!!notbase64!!!!notbase64!!",
		"url base64":     SecretPrefix + "____________________________________________",
		"too short":      SecretPrefix + "c2hvcnQ=",
		"too long":       SecretPrefix + strings.Repeat("AAAA", 22), // 66 bytes
		"trailing space": valid + " ",
	} {
		t.Run(name, func(t *testing.T) {
			k, err := DecodeSecret(s)
			if err == nil {
				t.Fatalf("accepted (%d bytes)", len(k))
			}
			if body := strings.TrimPrefix(s, SecretPrefix); len(body) > 3 && strings.Contains(err.Error(), body) {
				t.Fatalf("error %q repeats the secret", err)
			}
		})
	}
}
