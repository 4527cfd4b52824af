package eventlog

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestEncodeFieldNames(t *testing.T) {
	ev := Event{Type: KeyIssued, Actor: record.Actor{Type: "token", Accessor: "acc"}, RequestID: "r", Client: "c", Key: "k", KeyID: "id", Role: "ro", Version: 2, Details: map[string]string{"a": "b"}}
	got, err := Encode(ev, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2024-05-01T12:00:00Z","type":"key.issued","actor":{"type":"token","accessor":"acc"},"request_id":"r","client":"c","key":"k","key_id":"id","role":"ro","version":2,"details":{"a":"b"}}`
	if string(got) != want {
		t.Fatalf("Encode\n got %s\nwant %s", got, want)
	}
	// Empty identifiers are left out; a time set is kept.
	got, _ = Encode(Event{Type: KeysPurged, Time: t0.Add(time.Second)}, t0)
	if want := `{"time":"2024-05-01T12:00:01Z","type":"keys.purged","actor":{"type":""}}`; string(got) != want {
		t.Fatalf("Encode\n got %s\nwant %s", got, want)
	}
}

// A key pasted into a request's free text never reaches the log, however
// the event is encoded, and the caller's details are left as they were.
func TestEncodeRedactsKeysFromDetails(t *testing.T) {
	key, err := keyformat.Generate(bytes.NewReader(bytes.Repeat([]byte{7, 42, 99}, 400)), "ak", "prod", keyformat.DefaultEntropyBits)
	if err != nil {
		t.Fatal(err)
	}
	details := map[string]string{"reason": "leaked " + key}
	got, err := Encode(Event{Type: KeyRevoked, Details: details}, t0)
	if err != nil {
		t.Fatal(err)
	}
	secret := key[strings.LastIndexByte(key, '_')+1:]
	if strings.Contains(string(got), secret) || !strings.Contains(string(got), "leaked "+keyformat.Redacted) {
		t.Fatalf("encoded event: %s", got)
	}
	if details["reason"] != "leaked "+key {
		t.Fatalf("the caller's details were changed: %v", details)
	}
}
