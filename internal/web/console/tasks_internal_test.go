package console

import (
	"context"
	"errors"
	"testing"
)

// TestOneTaskOfAKindAtATimeAndCloseCancelsThem: a second backup while one
// runs is refused before its audit row; a failed audit row starts nothing;
// Close cancels what runs and waits for it.
func TestOneTaskOfAKindAtATimeAndCloseCancelsThem(t *testing.T) {
	c := &Console{tasks: newTasks()}
	release := make(chan struct{})
	started := make(chan struct{})
	var result error
	done := make(chan struct{})
	err := c.tasks.start(Task{Key: "backup"}, func() error { return nil }, func(ctx context.Context) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, func(err error) { result = err; close(done) })
	if err != nil {
		t.Fatal(err)
	}
	<-started
	recorded := false
	if err := c.tasks.start(Task{Key: "backup"}, func() error { recorded = true; return nil }, nil, nil); !errors.Is(err, errBusy) || recorded {
		t.Errorf("second backup: %v, recorded %v", err, recorded)
	}
	auditDown := errors.New("audit trail unavailable")
	ran := false
	if err := c.tasks.start(Task{Key: "drill:x"}, func() error { return auditDown }, func(context.Context) error { ran = true; return nil }, nil); !errors.Is(err, auditDown) {
		t.Errorf("unrecorded drill: %v", err)
	}
	if got := c.tasks.list(); len(got) != 1 || got[0].Key != "backup" {
		t.Errorf("running: %+v", got)
	}
	c.Close()
	<-done
	if !errors.Is(result, context.Canceled) || ran {
		t.Errorf("after Close: backup ended with %v; unrecorded drill ran: %v", result, ran)
	}
	if err := c.tasks.start(Task{Key: "backup"}, func() error { return nil }, nil, nil); !errors.Is(err, errBusy) {
		t.Errorf("a task started after Close: %v", err)
	}
	close(release)
}
