package vaulttest

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// Do sends req as a plain HTTP client would (no Vault api client: tests of
// raw answers, headers, status codes and programs in front of Vault) and
// returns the response, whose body is read and closed, and the body. A
// request that gets no answer fails the test.
func Do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// NewRequest is http.NewRequest for a test: a malformed request fails it.
func NewRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// NoKeyInLogs fails the test if the random part of any of keys stands in
// the shared server's audit log or server log: keys sent in a header must
// reach neither.
func NoKeyInLogs(t testing.TB, keys ...string) {
	t.Helper()
	for _, k := range keys {
		secret := k[strings.LastIndexByte(k, '_')+1:]
		for _, p := range []string{Shared.AuditPath, Shared.LogPath} {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), secret) {
				t.Fatalf("key plaintext found in %s", p)
			}
		}
	}
}
