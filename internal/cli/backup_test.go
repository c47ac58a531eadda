package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"ferry/internal/cli"
	"ferry/internal/store"
)

func ferry(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), append([]string{"ferry"}, args...), envFunc(env), nil, &out, &errb)
	return out.String(), errb.String(), err
}

// TestBackupCommands runs the operator's commands against a real data
// directory: back up (with the drill), list, verify, restore, and the
// refusals that must change nothing.
func TestBackupCommands(t *testing.T) {
	dir := t.TempDir()
	offline, _ := age.GenerateX25519Identity()
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(dir, "data"), "FERRY_LOG_LEVEL": "error",
		"FERRY_BACKUP_RECIPIENTS": offline.Recipient().String()}
	if out, _, err := ferry(t, env, "migrate"); err != nil {
		t.Fatal(err, out)
	}
	for _, d := range []string{"backups", "backup-work"} {
		if _, err := os.Stat(filepath.Join(dir, "data", d)); err == nil {
			t.Errorf("migrate created %s: only a backup should", d)
		}
	}
	db, err := sql.Open("sqlite", store.SQLiteDSN(filepath.Join(dir, "data", "ferry.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE operator_notes (n TEXT); INSERT INTO operator_notes VALUES ('kept across a restore')`); err != nil {
		t.Fatal(err)
	}

	out, _, err := ferry(t, env, "backup", "now")
	if err != nil {
		t.Fatalf("backup now: %v\n%s", err, out)
	}
	if !strings.Contains(out, "restore drill of") || !strings.Contains(out, " passed ") {
		t.Fatalf("backup now output lacks the drill result:\n%s", out)
	}
	id := strings.Fields(out)[1]
	out, errOut, err := ferry(t, env, "backup", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, " good ") || !strings.Contains(errOut, "newest good backup: "+id) {
		t.Fatalf("list: %v\n%s%s", err, out, errOut)
	}
	if out, _, err = ferry(t, env, "backup", "verify"); err != nil || !strings.Contains(out, "passed") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	to := filepath.Join(dir, "restored", "ferry.db")
	out, _, err = ferry(t, env, "backup", "restore", id, "--to", to)
	if err != nil || !strings.Contains(out, "row counts as recorded") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	rdb, err := sql.Open("sqlite", store.SQLiteDSN(to))
	if err != nil {
		t.Fatal(err)
	}
	var note string
	rdb.QueryRow(`SELECT n FROM operator_notes`).Scan(&note)
	rdb.Close()
	if note != "kept across a restore" {
		t.Fatalf("restored database lacks the note: %q", note)
	}
	if st, _ := os.Stat(to); st.Mode().Perm() != 0o600 {
		t.Errorf("restored database mode %o, want 0600", st.Mode().Perm())
	}
	// The offline recipient's identity restores too.
	idFile := filepath.Join(dir, "offline.key")
	os.WriteFile(idFile, []byte(offline.String()+"\n"), 0o600)
	if out, _, err = ferry(t, env, "backup", "restore", id, "--to", to+".offline", "--identity", idFile); err != nil {
		t.Fatalf("restore with the offline identity: %v\n%s", err, out)
	}

	before := backupDirState(t, dir)
	for name, args := range map[string][]string{
		"restore over an existing file": {"backup", "restore", id, "--to", to},
		"restore without --to":          {"backup", "restore", id},
		"unknown subcommand":            {"backup", "frobnicate"},
		"unknown backup":                {"backup", "verify", "20990101t000000z-abcdef"},
		"bad identity file":             {"backup", "restore", id, "--to", to + ".x", "--identity", filepath.Join(dir, "missing")},
	} {
		_, _, err := ferry(t, env, args...)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: exit %d: %v", name, cli.ExitCode(err), err)
	}
	if after := backupDirState(t, dir); after != before {
		t.Errorf("refused commands changed the data directory:\nbefore %s\nafter  %s", before, after)
	}
	out, _, err = ferry(t, env, "jobs", "list")
	if err != nil || !strings.Contains(out, "backup.run") {
		t.Errorf("jobs list lacks backup.run: %v\n%s", err, out)
	}
}

// backupDirState lists files with sizes (not the SQLite WAL/SHM, which reads
// may touch) to detect changes.
func backupDirState(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasSuffix(p, "-wal") && !strings.HasSuffix(p, "-shm") && !strings.HasSuffix(p, "lock") {
			fmt.Fprintf(&b, "%s:%d ", strings.TrimPrefix(p, dir), info.Size())
		}
		return nil
	})
	return b.String()
}

// TestBackupSettingsThatCannotWorkAreRefused: a backup interval longer than
// a day, a malformed offline recipient, an S3 bucket without credentials or
// key backups kept longer than 30 days stop the start with exit 2 and one
// line naming the variable, and nothing is written.
func TestBackupSettingsThatCannotWorkAreRefused(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"less often than daily": {map[string]string{"FERRY_BACKUP_EVERY": "25h"}, "FERRY_BACKUP_EVERY"},
		"weekly":                {map[string]string{"FERRY_BACKUP_EVERY": "168h"}, "FERRY_BACKUP_EVERY"},
		"not a duration":        {map[string]string{"FERRY_BACKUP_EVERY": "daily"}, "FERRY_BACKUP_EVERY"},
		"bad recipient":         {map[string]string{"FERRY_BACKUP_RECIPIENTS": "age1notarecipient"}, "FERRY_BACKUP_RECIPIENTS"},
		"ssh key as recipient":  {map[string]string{"FERRY_BACKUP_RECIPIENTS": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"}, "FERRY_BACKUP_RECIPIENTS"},
		"bucket without keys":   {map[string]string{"FERRY_S3_BUCKET": "b"}, "FERRY_S3_ACCESS_KEY_ID"},
		"key backups too long":  {map[string]string{"FERRY_BACKUP_KEY_DAYS": "90"}, "FERRY_BACKUP_KEY_DAYS"},
		"no daily backups kept": {map[string]string{"FERRY_BACKUP_KEEP_DAILY": "0"}, "FERRY_BACKUP_KEEP_DAILY"},
	} {
		dir := t.TempDir()
		c.env["FERRY_DATA_DIR"] = filepath.Join(dir, "data")
		_, _, err := ferry(t, c.env, "serve")
		if cli.ExitCode(err) != 2 || !strings.HasPrefix(err.Error(), c.want+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v (exit %d), want one line starting %s", name, err, cli.ExitCode(err), c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: wrote %v", name, entries)
		}
	}
	// The S3 secret is a secret: --print-config never shows it.
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "d"), "FERRY_S3_SECRET_ACCESS_KEY": "s3-secret-7f3a9e"}
	if out, _, err := ferry(t, env, "serve", "--print-config"); err != nil || strings.Contains(out, "s3-secret-7f3a9e") ||
		!strings.Contains(out, "FERRY_S3_SECRET_ACCESS_KEY=[redacted]") {
		t.Errorf("print-config: %v\n%s", err, out)
	}
	// Every interval up to a day is accepted.
	for _, every := range []string{"15m", "6h", "24h"} {
		env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "d"), "FERRY_BACKUP_EVERY": every}
		if out, _, err := ferry(t, env, "serve", "--print-config"); err != nil || !strings.Contains(out, "FERRY_BACKUP_EVERY=") {
			t.Errorf("FERRY_BACKUP_EVERY=%s: %v", every, err)
		}
	}
}

// TestBackupHelperProcess is `ferry backup now` in a child process, for the
// kill test; it does nothing in a normal run.
func TestBackupHelperProcess(t *testing.T) {
	if os.Getenv("FERRY_BACKUP_HELPER") != "1" {
		return
	}
	err := cli.Run(context.Background(), []string{"ferry", "backup", "now"}, os.Getenv, nil, io.Discard, os.Stderr)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// TestKilledBackupIsNeverListedAsGood kills a real `ferry backup now`
// process with SIGKILL at three moments — while the data object streams,
// as soon as the data object is complete, and during the restore drill —
// and checks each time that nothing of the killed run is listed as good,
// that the next run succeeds, and that the killed drill's plaintext scratch
// database does not outlive it.
func TestKilledBackupIsNeverListedAsGood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large database")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := map[string]string{"FERRY_DATA_DIR": data, "FERRY_LOG_LEVEL": "error"}
	if _, _, err := ferry(t, env, "migrate"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", store.SQLiteDSN(filepath.Join(data, "ferry.db")))
	if err != nil {
		t.Fatal(err)
	}
	// ~60 MB, so each phase lasts long enough to be caught.
	if _, err := db.Exec(`CREATE TABLE bulk (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if _, err := db.Exec(`INSERT INTO bulk VALUES (randomblob(1000000))`); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	backups := filepath.Join(data, "backups")
	work := filepath.Join(data, "backup-work")
	dataObjects := func() map[string]bool {
		m, _ := filepath.Glob(filepath.Join(backups, "data", "*"))
		out := map[string]bool{}
		for _, p := range m {
			out[p] = true
		}
		return out
	}
	var before map[string]bool
	prevGood := 0
	moments := []struct {
		name      string
		mustCatch bool // the moment lasts long enough that missing it means the test is not testing
		seen      func() bool
	}{
		{"data object streaming", true, func() bool {
			m, _ := filepath.Glob(filepath.Join(backups, ".partial", "put-*"))
			for _, p := range m {
				if st, err := os.Stat(p); err == nil && st.Size() > 1<<20 {
					return true
				}
			}
			return false
		}},
		{"data object complete", false, func() bool {
			for p := range dataObjects() {
				if !before[p] {
					return true
				}
			}
			return false
		}},
		{"restore drill running", true, func() bool {
			m, _ := filepath.Glob(filepath.Join(work, "*drill-*"))
			return len(m) > 0
		}},
	}
	for _, mo := range moments {
		before = dataObjects()
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackupHelperProcess$")
		cmd.Env = append(os.Environ(), "FERRY_BACKUP_HELPER=1", "FERRY_DATA_DIR="+data, "FERRY_LOG_LEVEL=error")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
	watch:
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			select {
			case err := <-exited:
				t.Logf("%s: the backup finished (%v) before that moment was seen", mo.name, err)
				break watch
			default:
			}
			if mo.seen() {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				killed = true
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if !killed && mo.mustCatch {
			t.Fatalf("%s: never seen, so never killed", mo.name)
		}
		out, _, err := ferry(t, env, "backup", "list")
		if err != nil {
			t.Fatalf("%s: list after the kill: %v", mo.name, err)
		}
		good := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " good ") {
				good++
			}
		}
		if killed {
			t.Logf("%s: killed; list:\n%s", mo.name, out)
			if good != prevGood {
				t.Fatalf("%s: %d good backups listed after the kill, %d before", mo.name, good, prevGood)
			}
		}
		if out, _, err := ferry(t, env, "backup", "now"); err != nil {
			t.Fatalf("%s: the next run failed: %v\n%s", mo.name, err, out)
		}
		if left, _ := filepath.Glob(filepath.Join(work, "*drill-*")); len(left) != 0 {
			t.Errorf("%s: the killed drill's scratch database outlived the next run: %v", mo.name, left)
		}
		out, _, err = ferry(t, env, "backup", "list")
		if err != nil {
			t.Fatal(err)
		}
		if prevGood = strings.Count(out, " good "); prevGood == 0 {
			t.Fatalf("%s: no good backup after the next run:\n%s", mo.name, out)
		}
	}
}

// TestBackupsSurviveKEKRotation: `ferry keys rotate-kek` moves the backup
// key (in the database and beside the backups) to the new KEK version, so
// `retire-kek` can drop the old one; the backups made before are still
// listed as good, restore, and new backups use the same backup key. A
// rebuilt server with the key file and an empty database still opens them.
func TestBackupsSurviveKEKRotation(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(dir, "data"), "FERRY_LOG_LEVEL": "error"}
	out, _, err := ferry(t, env, "backup", "now")
	if err != nil {
		t.Fatalf("backup now: %v\n%s", err, out)
	}
	id := strings.Fields(out)[1]
	if out, _, err = ferry(t, env, "keys", "rotate-kek"); err != nil {
		t.Fatalf("rotate-kek: %v\n%s", err, out)
	}
	if out, _, err = ferry(t, env, "keys", "retire-kek", "1"); err != nil {
		t.Fatalf("retire-kek 1 after rotation: %v\n%s", err, out)
	}
	out, _, err = ferry(t, env, "backup", "list")
	if err != nil || !strings.Contains(out, id) || strings.Count(out, " good ") != 1 {
		t.Fatalf("list after rotation: %v\n%s", err, out)
	}
	if out, _, err = ferry(t, env, "backup", "restore", id, "--to", filepath.Join(dir, "r.db")); err != nil {
		t.Fatalf("restore after rotation: %v\n%s", err, out)
	}
	if out, _, err = ferry(t, env, "backup", "now"); err != nil {
		t.Fatalf("backup after rotation: %v\n%s", err, out)
	}
	// After a disaster: a new data directory with only the key file, and the
	// same backup directory.
	rebuilt := filepath.Join(dir, "rebuilt")
	os.MkdirAll(rebuilt, 0o700)
	kek, _ := os.ReadFile(filepath.Join(dir, "data", "kek.json"))
	os.WriteFile(filepath.Join(rebuilt, "kek.json"), kek, 0o600)
	renv := map[string]string{"FERRY_DATA_DIR": rebuilt, "FERRY_LOG_LEVEL": "error", "FERRY_BACKUP_DIR": filepath.Join(dir, "data", "backups")}
	out, _, err = ferry(t, renv, "backup", "list")
	if err != nil || strings.Count(out, " good ") < 1 || strings.Contains(out, "invalid") {
		t.Fatalf("rebuilt server's list: %v\n%s", err, out)
	}
	if out, _, err = ferry(t, renv, "backup", "restore", "--to", filepath.Join(dir, "recovered.db")); err != nil {
		t.Fatalf("rebuilt server's restore: %v\n%s", err, out)
	}
}
