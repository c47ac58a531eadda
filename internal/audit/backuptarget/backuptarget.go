// Package backuptarget keeps the audit trail's signed checkpoints in the
// backup target — the backups' directory or S3 bucket — under audit/,
// beside the backups and as far from the database as they are. It adapts
// internal/backup's Target (Put, Get, List) to internal/audit's Target
// (Write, List, Read): neither area imports the other, and the backup
// package lists none of these objects as backups and expires none with
// them.
package backuptarget

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"ferry/internal/audit"
	"ferry/internal/backup"
)

// Target is the backup target seen as an audit checkpoint target.
type Target struct {
	Objects backup.Target
}

var _ audit.Target = Target{}

// backupPrefix is the folder of the audit trail's objects in the target.
const backupPrefix = "audit/"

// maxObject bounds what is read back: a checkpoint or a public key is a few
// hundred bytes.
const maxObject = 64 << 10

func (b Target) Describe() string { return b.Objects.String() + ", under " + backupPrefix }

// Write stores data under name unless the target already holds that name.
func (b Target) Write(ctx context.Context, name string, data []byte) error {
	if !audit.IsCheckpointName(name) {
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

func (b Target) List(ctx context.Context) ([]string, error) {
	objs, err := b.Objects.List(ctx, backupPrefix)
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	var out []string
	for _, o := range objs {
		if n, ok := strings.CutPrefix(o.Name, backupPrefix); ok && audit.IsCheckpointName(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (b Target) Read(ctx context.Context, name string) ([]byte, error) {
	if !audit.IsCheckpointName(name) {
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
