package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DirTarget keeps objects as files under a directory (mode 0700, files
// 0600). An object is written to .partial/ first, synced, and renamed into
// place, so a reader never sees half a file under an object's name.
type DirTarget struct {
	root string
}

var (
	_ Target  = (*DirTarget)(nil)
	_ sweeper = (*DirTarget)(nil)
)

const partialDir = ".partial"

// NewDirTarget returns a target rooted at dir. The directory is created
// (owner-only) by the first Put, not here: commands that never back up
// leave no trace.
func NewDirTarget(dir string) (*DirTarget, error) {
	if dir == "" {
		return nil, errors.New("backup directory: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	return &DirTarget{root: abs}, nil
}

func (t *DirTarget) String() string { return "directory " + t.root }

func (t *DirTarget) path(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(t.root, filepath.FromSlash(name)), nil
}

func (t *DirTarget) Put(ctx context.Context, name string, r io.Reader) (Object, error) {
	dst, err := t.path(name)
	if err != nil {
		return Object{}, err
	}
	if err := os.MkdirAll(filepath.Join(t.root, partialDir), 0o700); err != nil {
		return Object{}, fmt.Errorf("backup directory: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(t.root, partialDir), "put-*")
	if err != nil {
		return Object{}, fmt.Errorf("backup directory: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	ok = true
	syncDir(filepath.Dir(dst)) // make the rename itself durable
	st, err := os.Stat(dst)
	if err != nil {
		return Object{}, fmt.Errorf("write %s: %w", name, err)
	}
	if st.Size() != n {
		os.Remove(dst)
		return Object{}, fmt.Errorf("write %s: stored %d bytes, sent %d", name, st.Size(), n)
	}
	return Object{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Modified: st.ModTime()}, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (t *DirTarget) Get(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := t.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return f, err
}

func (t *DirTarget) List(_ context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(t.root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == partialDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(rel, prefix) || CheckName(rel) != nil {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return nil // removed while listing
		}
		out = append(out, Object{Name: rel, Size: st.Size(), Modified: st.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (t *DirTarget) Delete(_ context.Context, name string) error {
	p, err := t.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes partial files of puts that never finished (a killed process).
func (t *DirTarget) Sweep(_ context.Context, cutoff time.Time) (int, error) {
	ents, err := os.ReadDir(filepath.Join(t.root, partialDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		st, err := e.Info()
		if err != nil || !st.ModTime().Before(cutoff) {
			continue
		}
		if os.Remove(filepath.Join(t.root, partialDir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
