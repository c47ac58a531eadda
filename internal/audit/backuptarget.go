package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"ferry/internal/backup"
)

// BackupTarget keeps checkpoints in the backup target — the backups'
// directory or S3 bucket — under audit/, beside the backups and as far from
// the database as they are. It speaks only backup.Target's Put, Get and
// List: the backup package lists none of these objects as backups, and its
// retention deletes only the objects of backups.
type BackupTarget struct {
	Objects backup.Target
}

var _ Target = BackupTarget{}

// backupPrefix is the folder of the audit trail's objects in the target.
const backupPrefix = "audit/"

// maxObject bounds what is read back: a checkpoint or a public key is a few
// hundred bytes.
const maxObject = 64 << 10

func (b BackupTarget) Describe() string { return b.Objects.String() + ", under " + backupPrefix }

// Write stores data under name unless the target already holds that name.
func (b BackupTarget) Write(ctx context.Context, name string, data []byte) error {
	if !validName(name) {
		return fmt.Errorf("audit: bad checkpoint name %q", name)
	}
	objs, err := b.Objects.List(ctx, backupPrefix+name)
	if err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	for _, o := range objs {
		if o.Name == backupPrefix+name {
			return nil
		}
	}
	if _, err := b.Objects.Put(ctx, backupPrefix+name, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	return nil
}

func (b BackupTarget) List(ctx context.Context) ([]string, error) {
	objs, err := b.Objects.List(ctx, backupPrefix)
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	var out []string
	for _, o := range objs {
		if n, ok := strings.CutPrefix(o.Name, backupPrefix); ok && validName(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (b BackupTarget) Read(ctx context.Context, name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("audit: bad checkpoint name %q", name)
	}
	r, err := b.Objects.Get(ctx, backupPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxObject+1))
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	if len(data) > maxObject {
		return nil, fmt.Errorf("audit: checkpoint %s is larger than %d bytes", name, maxObject)
	}
	return data, nil
}

// WithEarlier writes to t and reads from t and from earlier: the checkpoints
// written to a directory before they moved to the backup target keep
// counting. A name in both is read from t.
func WithEarlier(t, earlier Target) Target { return withEarlier{t, earlier} }

type withEarlier struct {
	Target         // where checkpoints are written now
	earlier Target // read only
}

func (w withEarlier) Describe() string {
	return w.Target.Describe() + " (and earlier checkpoints in " + w.earlier.Describe() + ")"
}

func (w withEarlier) List(ctx context.Context) ([]string, error) {
	now, err := w.Target.List(ctx)
	if err != nil {
		return nil, err
	}
	before, err := w.earlier.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range append(now, before...) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func (w withEarlier) Read(ctx context.Context, name string) ([]byte, error) {
	b, err := w.Target.Read(ctx, name)
	if err == nil {
		return b, nil
	}
	if b2, err2 := w.earlier.Read(ctx, name); err2 == nil {
		return b2, nil
	}
	return nil, err
}
