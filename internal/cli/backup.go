package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"golang.org/x/term"

	"ferry/internal/backup"
	"ferry/internal/config"
	"ferry/internal/egress"
)

// checkBackupConfig refuses backup settings that cannot work, before
// anything is written.
func checkBackupConfig(cfg config.Config) error {
	if cfg.S3Bucket != "" && (cfg.S3AccessKeyID == "" || cfg.S3SecretAccessKey == "") {
		return &config.Error{Var: "FERRY_S3_ACCESS_KEY_ID", Reason: "FERRY_S3_BUCKET is set: set FERRY_S3_ACCESS_KEY_ID and FERRY_S3_SECRET_ACCESS_KEY (or _FILE) for it"}
	}
	return nil
}

// newBackups builds the backup service: S3 when a bucket is configured,
// otherwise a directory. Nothing is touched until a backup runs.
func newBackups(cfg config.Config, a *app) (*backup.Service, error) {
	var target backup.Target
	if cfg.S3Bucket != "" {
		region := cfg.S3Region
		if region == "" {
			region = cfg.Region
		}
		t, err := backup.NewS3Target(backup.S3Options{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: region,
			AccessKeyID: cfg.S3AccessKeyID, SecretAccessKey: cfg.S3SecretAccessKey, HTTP: a.gate.Client(egress.S3)})
		if err != nil {
			return nil, &config.Error{Var: "FERRY_S3_BUCKET", Reason: err.Error()}
		}
		target = t
	} else {
		t, err := backup.NewDirTarget(cfg.BackupPath())
		if err != nil {
			return nil, &config.Error{Var: "FERRY_BACKUP_DIR", Reason: err.Error()}
		}
		target = t
	}
	var recipients []age.Recipient
	for _, r := range cfg.BackupRecipients {
		rec, err := age.ParseX25519Recipient(r)
		if err != nil {
			return nil, &config.Error{Var: "FERRY_BACKUP_RECIPIENTS", Reason: err.Error()}
		}
		recipients = append(recipients, rec)
	}
	return backup.New(backup.Options{DB: a.db, DatabaseURL: cfg.DatabaseURL, KEK: a.keys.KEK(), Keys: keyOptions(cfg, a.gate), Target: target,
		Region: cfg.Region, Recipients: recipients, WorkDir: filepath.Join(cfg.DataDir, "backup-work"),
		Every: cfg.BackupEvery, Log: a.log, Version: Version,
		Retention: backup.Retention{Daily: cfg.BackupKeepDaily, Weekly: cfg.BackupKeepWeekly, Monthly: cfg.BackupKeepMonthly, KeyDays: cfg.BackupKeyDays}})
}

const backupUsage = `usage: ferry backup now | list | verify [ID] | restore [ID] --to PATH|postgres://… [--identity FILE] [--keys ID]`

// runBackup is `ferry backup`: back up now, list backups, drill one, or
// restore one into a new database.
func runBackup(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return &usageError{backupUsage}
	}
	sub, args := args[0], args[1:]
	var to, identity, keysFrom string
	var quiet bool
	extra := func(fs *flag.FlagSet) {
		if sub == "restore" {
			fs.StringVar(&to, "to", "", "where to restore: a new SQLite file, or the postgres:// URL of an empty database")
			fs.StringVar(&identity, "identity", "", "age identity file of an offline recipient (default: the server's restore identity)")
			fs.StringVar(&keysFrom, "keys", "", "backup whose tenant and log keys to restore (default: the newest kept)")
			fs.BoolVar(&quiet, "quiet", false, "no progress bar")
		}
	}
	switch sub {
	case "now", "list", "verify", "restore":
	default:
		return &usageError{fmt.Sprintf("unknown backup command %q; %s", sub, backupUsage)}
	}
	// The ID may come before the flags: `restore ID --to X`.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && (sub == "verify" || sub == "restore") {
		id, args = args[0], args[1:]
	}
	cfg, rest, err := loadConfig(e, "backup "+sub, args, extra)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		if id != "" || (sub != "verify" && sub != "restore") || len(rest) > 1 {
			return &usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], backupUsage)}
		}
		id = rest[0]
	}
	var ids []age.Identity
	if sub == "restore" {
		if to == "" {
			return &usageError{"backup restore: --to is required; " + backupUsage}
		}
		if identity != "" {
			f, err := os.Open(identity)
			if err != nil {
				return &usageError{fmt.Sprintf("--identity: %v", err)}
			}
			ids, err = age.ParseIdentities(f)
			f.Close()
			if err != nil {
				return &usageError{fmt.Sprintf("--identity %s: %v", identity, err)}
			}
		}
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	svc := a.backups
	switch sub {
	case "now":
		res, err := svc.Run(ctx)
		if res.Manifest.ID != "" {
			fmt.Fprintf(e.stdout, "backup %s stored in %s (%s)\n", res.Manifest.ID, svc.Target(), backup.Size(res.Manifest.Data.Size+res.Manifest.Keys.Size))
			printDrill(e.stdout, res.Drill)
			if n := len(res.Expired.Expired) + len(res.Expired.Discarded); n > 0 || len(res.Expired.KeysExpired) > 0 {
				fmt.Fprintf(e.stdout, "retention: %d backups removed, %d key objects expired\n", n, len(res.Expired.KeysExpired))
			}
		}
		return err
	case "list":
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		now := a.db.Now()
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tSTATE\tSIZE\tKEYS\tDRILL")
		for _, b := range list {
			keys := "-"
			if b.KeysKept {
				keys = "kept"
			} else if b.Manifest != nil {
				keys = "expired"
			}
			drill := "-"
			if b.Drill != nil {
				drill = map[bool]string{true: "passed ", false: "FAILED "}[b.Drill.OK] + b.Drill.At.Format(time.RFC3339)
			}
			state := string(b.State)
			if b.Problem != "" && b.State != backup.StateGood {
				state += " (" + b.Problem + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.CreatedAt.Format(time.RFC3339), state, backup.Size(b.Size), keys, drill)
		}
		tw.Flush()
		if g, ok := backup.NewestGood(list); ok {
			fmt.Fprintf(e.stderr, "newest good backup: %s, %s old (%s)\n", g.ID, now.Sub(g.CreatedAt).Round(time.Minute), svc.Target())
		} else {
			fmt.Fprintf(e.stderr, "no good backup in %s\n", svc.Target())
		}
		return nil
	case "verify":
		if id == "" {
			g, ok, err := svc.NewestGood(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("no good backup to verify; name one: ferry backup verify ID")
			}
			id = g.ID
		}
		d, err := svc.Drill(ctx, id)
		printDrill(e.stdout, d)
		if err == nil && !d.OK {
			err = fmt.Errorf("backup %s failed its restore drill: %s", id, d.Error)
		}
		return err
	default: // restore
		if id == "" {
			g, ok, err := svc.NewestGood(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("no good backup to restore; name one: ferry backup restore ID --to …")
			}
			id = g.ID
		}
		o := backup.RestoreOptions{To: to, Identities: ids, KeysFrom: keysFrom}
		var bar *progressBar
		if pf, ok := e.stderr.(*os.File); ok && !quiet && term.IsTerminal(int(pf.Fd())) {
			bar = &progressBar{w: e.stderr, start: time.Now()}
			o.Progress = bar.update
		}
		res, err := svc.Restore(ctx, id, o)
		if bar != nil {
			bar.done()
		}
		if err != nil {
			return err
		}
		var rows int64
		for _, n := range res.Tables {
			rows += n
		}
		fmt.Fprintf(e.stdout, "restored backup %s (keys from %s) to %s: %d tables, %d rows, row counts as recorded\n",
			res.ID, res.KeysFrom, redactURL(to), len(res.Tables), rows)
		return nil
	}
}

func printDrill(w io.Writer, d backup.DrillResult) {
	if d.ID == "" {
		return
	}
	verdict := "passed"
	if !d.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "restore drill of %s %s in %s (keys from %s)\n", d.ID, verdict, time.Duration(d.Millis)*time.Millisecond, d.KeysFrom)
	for _, c := range d.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-16s %s\n", mark, c.Name, c.Detail)
	}
}

// redactURL drops a password from a postgres:// URL before printing it.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	c := config.Config{DatabaseURL: s}
	var b strings.Builder
	c.Redacted(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "FERRY_DATABASE_URL="); ok {
			return v
		}
	}
	return "the database"
}

// progressBar draws one self-overwriting line: phase, bar, bytes, rate, ETA.
type progressBar struct {
	w     io.Writer
	start time.Time
	phase string
	drawn bool
}

func (p *progressBar) update(phase string, done, total int64) {
	if total <= 0 {
		return
	}
	if phase != p.phase {
		if p.drawn {
			fmt.Fprintln(p.w)
		}
		p.phase, p.start = phase, time.Now()
	}
	frac := min(float64(done)/float64(total), 1)
	const width = 30
	filled := int(frac * width)
	el := time.Since(p.start).Seconds()
	rate := float64(done) / max(el, 0.001)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r%-8s %3.0f%% [%s%s] %s / %s  %s/s  ETA %s   ", phase, frac*100,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), backup.Size(done), backup.Size(total), backup.Size(int64(rate)), eta)
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
