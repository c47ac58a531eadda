package backuptarget_test

import (
	"bytes"
	"context"
	"testing"

	"ferry/internal/audit/backuptarget"
	"ferry/internal/backup"
)

// TestBackupTargetKeepsWhatItHoldsAndRefusesBadNames: a name the target
// holds is never replaced (a checkpoint is written once); names outside
// the checkpoint alphabet and oversized objects are refused.
func TestBackupTargetKeepsWhatItHoldsAndRefusesBadNames(t *testing.T) {
	ctx := context.Background()
	tg, err := backup.NewDirTarget(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bt := backuptarget.Target{Objects: tg}
	name := "audit-checkpoint-00000000000000000007.json"
	if err := bt.Write(ctx, name, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := bt.Write(ctx, name, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if b, err := bt.Read(ctx, name); err != nil || string(b) != "first" {
		t.Errorf("read back %q, %v", b, err)
	}
	for _, bad := range []string{"../x", "audit-checkpoint-1.json/../../x", "manifests/x.json", "audit-checkpoint-7.JSON", ""} {
		if err := bt.Write(ctx, bad, []byte("x")); err == nil {
			t.Errorf("wrote %q", bad)
		}
		if _, err := bt.Read(ctx, bad); err == nil {
			t.Errorf("read %q", bad)
		}
	}
	big := "audit-checkpoint-00000000000000000008.json"
	if _, err := tg.Put(ctx, "audit/"+big, bytes.NewReader(make([]byte, 1<<20))); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.Read(ctx, big); err == nil {
		t.Error("a 1 MiB object was read as a checkpoint")
	}
	if names, err := bt.List(ctx); err != nil || len(names) != 2 {
		t.Errorf("List = %v, %v", names, err)
	}
}
