package gateway

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// runUntilCleanup starts cmd (nginx, vault agent) with its output captured,
// and at the end of the test stops it with stop (its graceful-shutdown
// signal), killing it if it has not exited within 10 seconds. If the test
// failed, it logs the output and the files in logs. The channel is closed
// when the process exits.
func runUntilCleanup(t *testing.T, name string, cmd *exec.Cmd, stop syscall.Signal, logs ...string) <-chan struct{} {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
			for _, l := range logs {
				raw, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, raw)
			}
		}
	})
	return done
}
