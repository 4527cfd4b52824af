package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRebuildRunsOnceInTheBackground(t *testing.T) {
	rb := NewRebuild(time.Minute)
	if rb.Running() {
		t.Fatal("running before Start")
	}
	if err := rb.Retry(func(context.Context) error { t.Fatal("Retry ran before Start"); return nil }); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var deadline time.Time
	runs := 0
	fill := func(ctx context.Context) error {
		runs++
		deadline, _ = ctx.Deadline()
		<-release
		return nil
	}
	rb.Start(fill)
	rb.Start(fill) // a second start does nothing
	if !rb.Running() {
		t.Fatal("not running after Start")
	}
	// Still running: nothing to retry.
	if err := rb.Retry(fill); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := rb.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while running = %v", err)
	}
	close(release)
	if err := rb.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rb.Running() || runs != 1 {
		t.Fatalf("running %v after %d runs", rb.Running(), runs)
	}
	if deadline.IsZero() || time.Until(deadline) > time.Minute {
		t.Fatalf("fill's context deadline %v, want within the timeout", deadline)
	}
	// A rebuild that succeeded is not run again.
	if err := rb.Retry(fill); err != nil || runs != 1 {
		t.Fatalf("Retry after success: %v, %d runs", err, runs)
	}
}

func TestRebuildRetriesAfterFailure(t *testing.T) {
	rb := NewRebuild(time.Minute)
	transient := errors.New("transient: leadership lost")
	fails := 1
	runs := 0
	fill := func(context.Context) error {
		runs++
		if fails > 0 {
			fails--
			return transient
		}
		return nil
	}
	// Wait before Start waits for the first run.
	waited := make(chan error, 1)
	go func() { waited <- rb.Wait(context.Background()) }()
	rb.Start(fill)
	if err := <-waited; !errors.Is(err, transient) {
		t.Fatalf("first run: %v", err)
	}
	if err := rb.Retry(fill); !errors.Is(err, transient) {
		t.Fatalf("Retry returned %v, want the failure it retries", err)
	}
	if err := rb.Wait(context.Background()); err != nil {
		t.Fatalf("retried run: %v", err)
	}
	if err := rb.Retry(fill); err != nil || runs != 2 {
		t.Fatalf("Retry after the retry succeeded: %v, %d runs", err, runs)
	}
}
