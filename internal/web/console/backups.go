package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/backup"
	"ferry/internal/scrub"
	"ferry/internal/staff"
)

// The backups page (P11): the newest good backup and its age, the last
// restore drill, every backup in the target with its state, size and how
// long its key object is kept, and the latest attempts (failures leave
// nothing in the target). Admins can back up now and drill a backup; both
// are recorded in the audit trail before they start.

const backupsCategory = "Backups"

var backupsTmpl = page("backups.html")

// backupRow is one backup as the page lists it.
type backupRow struct {
	backup.Backup
	Class     string    // good, unverified, partial or failed
	KeysUntil time.Time // when its key object expires; zero when gone or kept as the newest good backup's
	KeysNote  string
}

type backupsData struct {
	Target    string
	Every     time.Duration
	KeyDays   int
	Newest    *backup.Backup // newest good backup in the target
	Overdue   bool           // none, or older than the interval
	Status    backup.Status  // from the runs table: the last drill
	Backups   []backupRow
	ListError string // the target could not be listed
	Runs      []runRow
	Tasks     []Task
	CanRun    bool
	Flash     string
	Problem   string
}

// runRow is one backup attempt; Gone says its backup completed but is no
// longer in the target (retention removed it).
type runRow struct {
	backup.Run
	Gone bool
}

// classOf groups a backup's state the way the page names it: good (drill
// passed), unverified (complete, not drilled yet), partial (objects missing
// or wrong), failed (drill failed or the signature does not verify).
func classOf(s backup.State) string {
	switch s {
	case backup.StateGood:
		return "good"
	case backup.StateUnverified:
		return "unverified"
	case backup.StateIncomplete, backup.StateDamaged:
		return "partial"
	default:
		return "failed"
	}
}

var backupFlash = map[string]string{
	"backup": "Backup started. It appears below as running; reload to see it finish and its restore drill.",
	"drill":  "Restore drill started. Reload to see its result.",
}

func (c *Console) handleBackups(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	d := backupsData{Flash: backupFlash[r.URL.Query().Get("started")]}
	c.backupsPage(w, r, p, http.StatusOK, d)
}

func (c *Console) backupsPage(w http.ResponseWriter, r *http.Request, p staff.Principal, status int, d backupsData) {
	ctx := r.Context()
	svc := c.d.Backups
	now := c.d.Staff.Now()
	d.Target, d.Every, d.KeyDays = svc.Target().String(), c.d.Config.BackupEvery, c.d.Config.BackupKeyDays
	d.CanRun = p.Can(staff.RunBackups)
	list, err := svc.List(ctx)
	if err != nil {
		// The runs below still say what happened; the target's error is
		// the backup package's, which never carries credentials.
		d.ListError = scrub.Logs.Text(err.Error())
	}
	newest, ok := backup.NewestGood(list)
	if ok {
		d.Newest = &newest
	}
	d.Overdue = err == nil && (!ok || now.Sub(newest.CreatedAt) > d.Every)
	for _, b := range list {
		row := backupRow{Backup: b, Class: classOf(b.State)}
		switch {
		case b.KeysKept && ok && b.ID == newest.ID:
			row.KeysNote = "kept while this is the newest good backup"
		case b.KeysKept:
			row.KeysUntil = b.CreatedAt.AddDate(0, 0, d.KeyDays)
		case b.Manifest != nil:
			row.KeysNote = "expired: shredded tenants are unreadable in it"
		}
		d.Backups = append(d.Backups, row)
	}
	if d.Status, err = svc.Status(ctx); err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	d.Status.LastDrillErr = scrub.Logs.Text(d.Status.LastDrillErr)
	runs, err := svc.Runs(ctx, 10)
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	inTarget := map[string]bool{}
	for _, b := range list {
		inTarget[b.ID] = true
	}
	for _, run := range runs {
		run.Error, run.DrillError = scrub.Logs.Text(run.Error), scrub.Logs.Text(run.DrillError)
		d.Runs = append(d.Runs, runRow{Run: run, Gone: d.ListError == "" && run.State == "complete" && !inTarget[run.ID]})
	}
	d.Tasks = c.tasks.list()
	c.Render(w, r, &p, backupsTmpl, status, "Backups", d)
}

// handleBackupNow is "Back up now": recorded, then run in the background
// (a backup and its drill take longer than a page may wait).
func (c *Console) handleBackupNow(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	svc := c.d.Backups
	c.startBackupTask(w, r, p, Task{Key: "backup", By: p.Username}, "backups.run", svc.Target().String(),
		func(ctx context.Context) error { _, err := svc.Run(ctx); return err }, "backup")
}

// handleBackupVerify runs a restore drill of one backup: only one whose
// signed manifest verifies can be drilled.
func (c *Console) handleBackupVerify(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	svc := c.d.Backups
	id := r.PathValue("id")
	_, err := svc.Manifest(r.Context(), id)
	switch {
	case errors.Is(err, backup.ErrNotFound):
		c.errorPage(w, r, &p, apperr.New(apperr.ENOTFOUND, "no backup %q in %s", id, svc.Target()))
		return
	case errors.Is(err, backup.ErrSignature):
		c.errorPage(w, r, &p, apperr.New(apperr.ECONFLICT, "backup %s has a manifest whose signature does not verify: it cannot be drilled, only inspected", id))
		return
	case err != nil:
		c.errorPage(w, r, &p, err)
		return
	}
	c.startBackupTask(w, r, p, Task{Key: "drill:" + id, By: p.Username}, "backups.verify", id,
		func(ctx context.Context) error {
			d, err := svc.Drill(ctx, id)
			if err == nil && !d.OK {
				err = fmt.Errorf("backup %s failed its restore drill: %s", id, d.Error)
			}
			return err
		}, "drill")
}

func (c *Console) startBackupTask(w http.ResponseWriter, r *http.Request, p staff.Principal, task Task, action, object string,
	fn func(context.Context) error, flash string) {
	task.Started = c.d.Staff.Now()
	err := c.tasks.start(task, func() error {
		return c.d.Audit.Record(r.Context(), auditEvent(p, action, backupsCategory, object))
	}, fn, func(err error) {
		if err != nil {
			c.log.Error("console: "+describeTask(task)+" failed", "by", task.By, "err", err)
			return
		}
		c.log.Info("console: "+describeTask(task)+" done", "by", task.By)
	})
	switch {
	case errors.Is(err, errBusy):
		msg := describeTask(task) + " is already running"
		for _, t := range c.tasks.list() {
			if t.Key == task.Key {
				msg = fmt.Sprintf("%s started by %s at %s is still running", describeTask(t), t.By, whenOrDash(t.Started))
			}
		}
		c.backupsPage(w, r, p, http.StatusConflict, backupsData{Problem: msg})
	case err != nil:
		c.errorPage(w, r, &p, apperr.Wrap(err, apperr.EUNAVAILABLE, "the action could not be recorded, so it was not started"))
	default:
		http.Redirect(w, r, "/console/backups?started="+flash, http.StatusSeeOther)
	}
}

func describeTask(t Task) string {
	if id, ok := strings.CutPrefix(t.Key, "drill:"); ok {
		return "a restore drill of " + id
	}
	return "a backup"
}
