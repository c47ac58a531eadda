package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func TestContractPeriodicJobRunsThroughTheQueue(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ran := make(chan struct{}, 10)
		var calls atomic.Int32
		reg := jobs.NewRegistry()
		reg.Register(jobs.Job{Name: "tick", Every: 500 * time.Millisecond, Run: func(context.Context) error {
			calls.Add(1)
			ran <- struct{}{}
			return nil
		}})
		reg.Register(jobs.Job{Name: "manual", Run: func(context.Context) error { return errors.New("must not run periodically") }})
		r, err := jobs.Start(ctx, db, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Stop(context.Background())
		for i := 0; i < 2; i++ {
			select {
			case <-ran:
			case <-ctx.Done():
				t.Fatalf("periodic job ran %d times before the deadline", calls.Load())
			}
		}
	})
}

func TestRunOnceCallsTheJobAndRejectsUnknownNames(t *testing.T) {
	reg := jobs.NewRegistry()
	var n int
	reg.Register(jobs.Job{Name: "reqlog.retention", Run: func(context.Context) error { n++; return nil }})
	if err := reg.RunOnce(context.Background(), "reqlog.retention"); err != nil || n != 1 {
		t.Fatalf("RunOnce: err=%v n=%d", err, n)
	}
	if err := reg.RunOnce(context.Background(), "nope"); !errors.Is(err, jobs.ErrUnknownJob) {
		t.Fatalf("unknown job: %v", err)
	}
}
