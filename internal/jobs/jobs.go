// Package jobs runs Ferry's periodic work — retention, purges, reporting,
// backups — durably through River. Areas register named jobs; with
// PostgreSQL, River elects one leader across replicas so each periodic job is
// enqueued once per interval; with SQLite, River gets its own single
// connection, as its SQLite driver requires. Every job can also be run once
// from the CLI (`ferry jobs run NAME`), which calls the same function.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"ferry/internal/store"
)

// Job is one unit of periodic work.
type Job struct {
	Name  string
	Doc   string        // one line for `ferry jobs list`
	Every time.Duration // 0: only run on demand
	Run   func(ctx context.Context) error
}

// ErrUnknownJob is returned by RunOnce for a name nobody registered.
var ErrUnknownJob = errors.New("unknown job")

// Registry holds the registered jobs.
type Registry struct {
	mu   sync.Mutex
	jobs map[string]Job
	kick func(ctx context.Context, name string) error // set while a Runner works the queue
}

// ErrNotRunning: no job runner works the queue in this process (a CLI
// command); Kick cannot ask for a run.
var ErrNotRunning = errors.New("jobs: no job runner in this process")

// Kick asks the running job queue to run the named job soon, once, besides
// its schedule (an immediate deletion asks for its purge this way).
func (r *Registry) Kick(ctx context.Context, name string) error {
	r.mu.Lock()
	_, ok := r.jobs[name]
	kick := r.kick
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	if kick == nil {
		return ErrNotRunning
	}
	return kick(ctx, name)
}

func (r *Registry) setKick(fn func(ctx context.Context, name string) error) {
	r.mu.Lock()
	r.kick = fn
	r.mu.Unlock()
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{jobs: map[string]Job{}} }

// Register adds a job; registering a name twice is a programming error.
func (r *Registry) Register(j Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.jobs[j.Name]; dup {
		panic("jobs: duplicate job " + j.Name)
	}
	r.jobs[j.Name] = j
}

// List returns the jobs sorted by name.
func (r *Registry) List() []Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Job, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// RunOnce runs the named job now, in this process.
func (r *Registry) RunOnce(ctx context.Context, name string) error {
	r.mu.Lock()
	j, ok := r.jobs[name]
	r.mu.Unlock()
	if !ok {
		names := []string{}
		for _, j := range r.List() {
			names = append(names, j.Name)
		}
		return fmt.Errorf("%w %q (known: %v)", ErrUnknownJob, name, names)
	}
	return j.Run(ctx)
}

// args is the single River job kind: it names which registered job to run.
type args struct {
	Name string `json:"name"`
}

func (args) Kind() string { return "ferry_job" }

type worker struct {
	river.WorkerDefaults[args]
	reg *Registry
	log *slog.Logger
}

func (w *worker) Work(ctx context.Context, j *river.Job[args]) error {
	start := time.Now()
	err := w.reg.RunOnce(ctx, j.Args.Name)
	if err != nil {
		w.log.Error("job failed", "job", j.Args.Name, "attempt", j.Attempt, "err", err)
		return err
	}
	w.log.Info("job done", "job", j.Args.Name, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// Runner is a started River client.
type Runner struct {
	stop  func(context.Context) error
	close func() error
	reg   *Registry
}

// Start migrates River's tables and starts working periodic jobs.
func Start(ctx context.Context, db *store.DB, reg *Registry, log *slog.Logger) (*Runner, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{reg: reg, log: log})
	var periodic []*river.PeriodicJob
	for _, j := range reg.List() {
		if j.Every <= 0 {
			continue
		}
		name := j.Name
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(j.Every),
			func() (river.JobArgs, *river.InsertOpts) { return args{Name: name}, nil },
			&river.PeriodicJobOpts{ID: name}))
	}
	cfg := &river.Config{
		Logger:       log.With("component", "jobs"),
		PeriodicJobs: periodic,
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:      workers,
		JobTimeout:   time.Hour, // retention on millions of rows takes a while
	}
	switch db.Dialect {
	case store.Postgres:
		drv := riverpgxv5.New(db.Pool)
		if err := migrate(ctx, drv); err != nil {
			return nil, err
		}
		c, err := river.NewClient(drv, cfg)
		if err != nil {
			return nil, err
		}
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
		reg.setKick(func(ctx context.Context, name string) error {
			_, err := c.Insert(ctx, args{Name: name}, nil)
			return err
		})
		return &Runner{stop: c.Stop, close: func() error { return nil }, reg: reg}, nil
	default:
		// River's SQLite driver wants exactly one connection of its own.
		h, err := sql.Open("sqlite", store.SQLiteDSN(db.Path))
		if err != nil {
			return nil, err
		}
		h.SetMaxOpenConns(1)
		drv := riversqlite.New(h)
		if err := migrate(ctx, drv); err != nil {
			h.Close()
			return nil, err
		}
		c, err := river.NewClient(drv, cfg)
		if err != nil {
			h.Close()
			return nil, err
		}
		if err := c.Start(ctx); err != nil {
			h.Close()
			return nil, err
		}
		reg.setKick(func(ctx context.Context, name string) error {
			_, err := c.Insert(ctx, args{Name: name}, nil)
			return err
		})
		return &Runner{stop: c.Stop, close: h.Close, reg: reg}, nil
	}
}

func migrate[TTx any](ctx context.Context, drv riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	return nil
}

// Stop waits for running jobs to finish (until ctx ends) and releases the queue.
func (r *Runner) Stop(ctx context.Context) error {
	r.reg.setKick(nil)
	err := r.stop(ctx)
	return errors.Join(err, r.close())
}

// Names lists registered job names (for help text).
func (r *Registry) Names() []string {
	var out []string
	for _, j := range r.List() {
		out = append(out, j.Name)
	}
	return slices.Clip(out)
}
