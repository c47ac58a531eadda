package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/audit"
	"ferry/internal/audit/backuptarget"
	"ferry/internal/backup"
	"ferry/internal/backup/backuptest"
	"ferry/internal/egress"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

const (
	s3Region = "us-west-2"
	s3Bucket = "ferry-backups"
	s3Access = "ferryauditaccess"
	s3Secret = "ferry-audit-secret-7c1f0a"
)

// backupTargets are the two kinds of backup target: a directory, and a
// bucket on a real S3-compatible server (versitygw) reached through the
// egress gate, as the backups reach it.
func backupTargets(t *testing.T) map[string]backup.Target {
	t.Helper()
	dir, err := backup.NewDirTarget(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]backup.Target{"directory": dir}
	endpoint := backuptest.VersityGW(t, s3Region, s3Bucket, s3Access, s3Secret)
	g, err := egress.New(egress.Config{Region: s3Region, S3Endpoint: endpoint, S3Bucket: s3Bucket, S3Region: s3Region, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	s3t, err := backup.NewS3Target(backup.S3Options{Endpoint: endpoint, Bucket: s3Bucket, Region: s3Region,
		AccessKeyID: s3Access, SecretAccessKey: s3Secret, HTTP: g.Client(egress.S3)})
	if err != nil {
		t.Fatal(err)
	}
	out["s3"] = s3t
	return out
}

func getObject(t *testing.T, tg backup.Target, name string) []byte {
	t.Helper()
	r, err := tg.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("object %s: %v", name, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

// TestContractCutOffTailIsCaughtByCheckpointsInTheBackupTarget: with the
// backup target configured, the signed checkpoints and the signing key's
// public half are objects under audit/ in it — and nothing is written to
// the checkpoint directory. Anyone holding only those two objects can check
// the signature (done here by hand, from the format, not through Ferry);
// deleting the trail's tail in the database is then caught by verify, on
// both engines and both kinds of target.
func TestContractCutOffTailIsCaughtByCheckpointsInTheBackupTarget(t *testing.T) {
	for kind, tg := range backupTargets(t) {
		t.Run(kind, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				old, _ := tg.List(ctx, "audit/") // the other engine's run
				for _, o := range old {
					tg.Delete(ctx, o.Name)
				}
				f := newFixture(t, db)
				f.trail = audit.New(db, f.ring, backuptarget.Target{Objects: tg}, nil)
				f.fill(t, rand.New(rand.NewPCG(21, 22)), 20)
				c, written, err := f.trail.Checkpoint(ctx)
				if err != nil || !written || c.Seq != 20 {
					t.Fatalf("checkpoint: %+v %v %v", c, written, err)
				}

				objs, err := tg.List(ctx, "audit/")
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, o := range objs {
					names = append(names, o.Name)
				}
				cpName := fmt.Sprintf("audit/audit-checkpoint-%020d.json", 20)
				keyName := "audit/audit-key-" + c.KeyID + ".pub"
				if len(names) != 2 || names[0] != cpName || names[1] != keyName {
					t.Fatalf("objects under audit/: %v", names)
				}
				if _, err := os.Stat(f.dir); !os.IsNotExist(err) {
					t.Errorf("the checkpoint directory was written to: %v", err)
				}
				verifyByHand(t, getObject(t, tg, cpName), getObject(t, tg, keyName), 20)

				rep := f.verify(t)
				mustOK(t, rep, "intact")
				if rep.Checkpoints != 1 || !strings.Contains(rep.Target, tg.String()) {
					t.Errorf("report: %d checkpoints in %q", rep.Checkpoints, rep.Target)
				}
				f.dropTriggers(t)
				f.exec(t, `DELETE FROM audit_trail WHERE seq > 17`)
				mustBreakAt(t, f.verify(t), 18, "cut off", "last 3 rows deleted")
				f.exec(t, `DELETE FROM audit_trail`)
				mustBreakAt(t, f.verify(t), 1, "cut off", "every row deleted")
			})
		})
	}
}

// verifyByHand checks a checkpoint as an outside verifier would: the
// Ed25519 signature over "ferry/audit/checkpoint/v1", the row count, the
// head hash in hex, the time and the key id, one per line.
func verifyByHand(t *testing.T, cp, pub []byte, seq int64) {
	t.Helper()
	var j struct {
		Seq       int64  `json:"seq"`
		Head      string `json:"head"`
		At        string `json:"at"`
		KeyID     string `json:"key_id"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(cp, &j); err != nil || j.Seq != seq {
		t.Fatalf("checkpoint %s: %v", cp, err)
	}
	pk, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(pub)))
	if err != nil || len(pk) != ed25519.PublicKeySize {
		t.Fatalf("public key %q: %v", pub, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(j.Signature)
	if _, err := hex.DecodeString(j.Head); err != nil {
		t.Fatal(err)
	}
	msg := "ferry/audit/checkpoint/v1\n" + strconv.FormatInt(j.Seq, 10) + "\n" + j.Head + "\n" + j.At + "\n" + j.KeyID + "\n"
	if !ed25519.Verify(pk, []byte(msg), sig) {
		t.Error("the checkpoint's signature does not verify with the public key beside it")
	}
}

// TestBackupsNeitherListNorExpireTheCheckpoints: the audit trail's objects
// sit beside backups that come and go by retention; they are never listed
// as a backup and never deleted with one.
func TestBackupsNeitherListNorExpireTheCheckpoints(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	f := newFixture(t, db)
	dir := t.TempDir()
	tg, err := backup.NewDirTarget(filepath.Join(dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	f.trail = audit.New(db, f.ring, backuptarget.Target{Objects: tg}, nil)
	svc, err := backup.New(backup.Options{DB: db, KEK: f.ring.KEK(), Keys: keys.Options{KeyFile: f.keyFile},
		Target: tg, Region: "us-west-2", WorkDir: filepath.Join(dir, "work"), Every: 24 * time.Hour, Version: "test",
		Retention: backup.Retention{Daily: 1, KeyDays: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	var ids []string
	for day := range 3 {
		f.fill(t, rand.New(rand.NewPCG(uint64(day), 1)), 3)
		c, _, err := f.trail.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, fmt.Sprintf("audit/audit-checkpoint-%020d.json", c.Seq))
		res, err := svc.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Manifest.ID)
		f.now = f.now.Add(50 * time.Hour)
	}
	list, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != ids[2] || list[0].State != backup.StateGood {
		t.Fatalf("backups after retention: %+v (made %v)", list, ids)
	}
	objs, _ := tg.List(ctx, "audit/")
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Name] = true
	}
	for _, n := range cps {
		if !have[n] {
			t.Errorf("retention deleted checkpoint %s", n)
		}
	}
	mustOK(t, f.verify(t), "after retention")
	if rep := f.verify(t); rep.Checkpoints != 3 {
		t.Errorf("%d checkpoints verified, want 3", rep.Checkpoints)
	}
}

// TestCheckpointsWrittenBeforeTheMoveStillCount: a server whose checkpoints
// went to a directory and now go to the backup target still checks the
// trail against the earlier ones, and writes new ones — and the public key —
// only to the backup target.
func TestCheckpointsWrittenBeforeTheMoveStillCount(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	f := newFixture(t, db)
	f.fill(t, rand.New(rand.NewPCG(3, 4)), 10)
	if _, _, err := f.trail.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	tg, err := backup.NewDirTarget(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	f.trail = audit.New(db, f.ring, audit.WithEarlier(backuptarget.Target{Objects: tg}, audit.DirTarget{Dir: f.dir}), nil)
	rep := f.verify(t)
	mustOK(t, rep, "after the move")
	if rep.Checkpoints != 1 || !strings.Contains(rep.Target, "earlier checkpoints in directory "+f.dir) {
		t.Errorf("report after the move: %d checkpoints, target %q", rep.Checkpoints, rep.Target)
	}
	f.fill(t, rand.New(rand.NewPCG(5, 6)), 5)
	c, written, err := f.trail.Checkpoint(ctx)
	if err != nil || !written {
		t.Fatal(written, err)
	}
	inDir, _ := os.ReadDir(f.dir)
	objs, _ := tg.List(ctx, "audit/")
	if len(inDir) != 2 || len(objs) != 2 || objs[0].Name != fmt.Sprintf("audit/audit-checkpoint-%020d.json", c.Seq) ||
		objs[1].Name != "audit/audit-key-"+c.KeyID+".pub" {
		t.Errorf("after a new checkpoint: directory holds %d files, backup target %+v", len(inDir), objs)
	}
	if rep := f.verify(t); !rep.OK() || rep.Checkpoints != 2 {
		t.Errorf("two checkpoints, one in each place: %+v", rep)
	}
	f.dropTriggers(t)
	f.exec(t, `DELETE FROM audit_trail WHERE seq > 8`)
	mustBreakAt(t, f.verify(t), 9, "cut off", "cut below the earlier directory's checkpoint")
}
