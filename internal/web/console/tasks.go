package console

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// tasks runs work a console action starts but its response cannot wait for
// (a backup, a restore drill): after the audit row is written, in the
// background, at most one of each kind at a time. Their outcome is recorded
// where the work records it (backup_runs, the drill records); a failure is
// also logged.
type tasks struct {
	mu      sync.Mutex
	running map[string]Task
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Task is one piece of background work started from the console.
type Task struct {
	Key     string // what it is: "backup", "drill:<backup id>"
	By      string // who started it
	Started time.Time
}

func newTasks() *tasks {
	ctx, cancel := context.WithCancel(context.Background())
	return &tasks{running: map[string]Task{}, ctx: ctx, cancel: cancel}
}

// errBusy: a task of the same key is running (or the console is closing).
var errBusy = errors.New("console: task already running")

// start reserves task's key, calls before (the audit row: if it fails,
// nothing runs) and then runs fn in the background; done gets fn's result.
func (t *tasks) start(task Task, before func() error, fn func(ctx context.Context) error, done func(error)) error {
	t.mu.Lock()
	if _, busy := t.running[task.Key]; busy || t.ctx.Err() != nil {
		t.mu.Unlock()
		return errBusy
	}
	t.running[task.Key] = task
	t.wg.Add(1)
	t.mu.Unlock()
	finish := func() {
		t.mu.Lock()
		delete(t.running, task.Key)
		t.mu.Unlock()
		t.wg.Done()
	}
	if err := before(); err != nil {
		finish()
		return err
	}
	go func() {
		err := fn(t.ctx)
		finish()
		done(err)
	}()
	return nil
}

func (t *tasks) list() []Task {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Task
	for _, x := range t.running {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b Task) int { return a.Started.Compare(b.Started) })
	return out
}

// Wait returns when no task started from the console is running.
func (c *Console) Wait() { c.tasks.wg.Wait() }

// Close cancels the tasks started from the console and waits for them: a
// cancelled backup is recorded as failed and never listed as good.
func (c *Console) Close() {
	c.tasks.mu.Lock()
	c.tasks.cancel()
	c.tasks.mu.Unlock()
	c.tasks.wg.Wait()
}
