// Package raft tests the Raft flavour of internal/vaulttest that the soak,
// fuzz and storage-limit tests build on: data survives a clean restart and
// a crash of Vault, and a killed plugin is started again by Vault.
package raft

import (
	"context"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

func TestRestartKeepsDataAndPluginComesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := vaulttest.Shared
	mount := vaulttest.NewMount(t)
	vaulttest.Write(t, mount+"/clients/billing", map[string]interface{}{"owner": "team-payments"})

	first, err := s.PluginPIDs()
	if err != nil || len(first) != 1 {
		t.Fatalf("plugin processes before the kill: %v, %v", first, err)
	}
	if _, err := s.KillPlugin(); err != nil {
		t.Fatal(err)
	}
	readOwner(t, mount, "team-payments")
	again, err := s.PluginPIDs()
	if err != nil || len(again) != 1 || again[0] == first[0] {
		t.Fatalf("plugin processes after the kill: %v (before %v), %v", again, first, err)
	}

	for _, crash := range []bool{false, true} {
		if err := s.Restart(ctx, crash); err != nil {
			t.Fatalf("restart (crash=%v): %v", crash, err)
		}
		readOwner(t, mount, "team-payments")
	}
}

// readOwner reads the client back, retrying while Vault finishes loading
// the mount after a restart.
func readOwner(t *testing.T, mount, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		sec, err := vaulttest.Client(t).Logical().Read(mount + "/clients/billing")
		if err == nil && sec != nil {
			if got := sec.Data["owner"]; got != want {
				t.Fatalf("owner = %v, want %s", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client not readable: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling for readiness
	}
}
