package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ferry/internal/backup/backuptest"
	"ferry/internal/cli"
	"ferry/internal/store"
)

// TestAuditCheckpointsGoToTheBackupTargetAndVerifyReadsThem: with a backup
// target configured — a directory (FERRY_BACKUP_DIR) or an S3 bucket on a
// real S3 server — `ferry audit checkpoint` writes there and not to the
// checkpoint directory, and `ferry audit verify` reads it back: deleting the
// trail's tail in the database is caught. Checkpoints written to the
// directory before the backup target was configured still count, and an
// explicit FERRY_AUDIT_CHECKPOINT_DIR keeps them in that directory.
func TestAuditCheckpointsGoToTheBackupTargetAndVerifyReadsThem(t *testing.T) {
	const access, secret, bucket = "ferrycliaccess", "ferry-cli-secret-5d9e1b", "ferry-backups"
	endpoint := backuptest.VersityGW(t, "us-west-2", bucket, access, secret)
	for _, tc := range []struct {
		name   string
		target map[string]string
		where  func(dir string) string // what the report says the target is
	}{
		{"directory", map[string]string{"FERRY_BACKUP_DIR": "BACKUPS"}, func(dir string) string { return "directory " + filepath.Join(dir, "backups") + ", under audit/" }},
		{"s3", map[string]string{"FERRY_S3_ENDPOINT": endpoint, "FERRY_S3_BUCKET": bucket, "FERRY_S3_ACCESS_KEY_ID": access,
			"FERRY_S3_SECRET_ACCESS_KEY": secret, "FERRY_EGRESS_ALLOW_LOOPBACK": "true"}, func(string) string { return "s3 bucket " + bucket }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			env := map[string]string{"FERRY_DATA_DIR": data, "USER": "root"}
			// Before: checkpoints in the default directory.
			for _, u := range []string{"a1", "a2"} {
				if _, _, err := runCLI(env, "staff", "add", "--user", u, "--role", "auditor"); err != nil {
					t.Fatal(err)
				}
			}
			if out, _, err := runCLI(env, "audit", "checkpoint"); err != nil || !strings.Contains(out, "2 rows") {
				t.Fatalf("checkpoint before: %v %s", err, out)
			}
			for k, v := range tc.target {
				env[k] = strings.ReplaceAll(v, "BACKUPS", filepath.Join(dir, "backups"))
			}
			for _, u := range []string{"b1", "b2", "b3"} {
				if _, _, err := runCLI(env, "staff", "add", "--user", u, "--role", "auditor"); err != nil {
					t.Fatal(err)
				}
			}
			out, _, err := runCLI(env, "audit", "checkpoint")
			if err != nil || !strings.Contains(out, "checkpoint written: 5 rows") || !strings.Contains(out, tc.where(dir)) {
				t.Fatalf("checkpoint to the backup target: %v %s", err, out)
			}
			if files, _ := os.ReadDir(filepath.Join(data, "audit-checkpoints")); len(files) != 2 {
				t.Errorf("the checkpoint directory holds %d files, want the 2 written before (checkpoint and key)", len(files))
			}
			if tc.name == "directory" {
				if _, err := os.Stat(filepath.Join(dir, "backups", "audit", "audit-checkpoint-00000000000000000005.json")); err != nil {
					t.Errorf("checkpoint object: %v", err)
				}
			}
			out, _, err = runCLI(env, "audit", "verify")
			if err != nil || !strings.Contains(out, "2 signed checkpoints") || !strings.Contains(out, "newest: row 5") || !strings.Contains(out, "OK") {
				t.Fatalf("verify: %v\n%s", err, out)
			}
			db, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(data, "ferry.db")})
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`DROP TRIGGER IF EXISTS audit_trail_no_delete`, `DELETE FROM audit_trail WHERE seq > 3`} {
				if _, err := db.SQL.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			out, _, err = runCLI(env, "audit", "verify")
			if cli.ExitCode(err) != 1 || !strings.Contains(out, "first broken row 4") || !strings.Contains(out, "cut off") {
				t.Errorf("tail deleted: %v\n%s", err, out)
			}
			// The operator's own directory wins over the backup target.
			env["FERRY_AUDIT_CHECKPOINT_DIR"] = filepath.Join(dir, "mine")
			out, _, _ = runCLI(env, "audit", "verify")
			if !strings.Contains(out, "0 signed checkpoints in directory "+filepath.Join(dir, "mine")) {
				t.Errorf("with FERRY_AUDIT_CHECKPOINT_DIR: %s", out)
			}
		})
	}
}
