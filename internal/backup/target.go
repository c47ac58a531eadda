package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Target is where backups are kept: a directory or an S3 bucket. It stores
// named objects and knows nothing of what they hold, so other areas (the
// audit trail's signed checkpoints) can keep their objects beside the
// backups under their own prefix.
type Target interface {
	// Put stores everything r yields under name. The object appears only
	// when complete: an error, a cancelled ctx or a killed process leaves
	// nothing under name (at most an abandoned partial upload, which is
	// never listed). The returned Object's Size is what the target reports
	// having stored, and SHA256 the digest of the bytes sent.
	Put(ctx context.Context, name string, r io.Reader) (Object, error)
	// Get opens an object; ErrNotFound if there is none.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the complete objects whose names start with prefix,
	// sorted by name.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// String says where the target is, without secrets.
	String() string
}

// Object is one stored object.
type Object struct {
	Name     string
	Size     int64
	SHA256   string    // hex; set by Put only
	Modified time.Time // as the target reports it
}

// sweeper is implemented by targets that can leave abandoned partial uploads
// behind (a killed process mid-upload); Sweep removes those started before
// cutoff.
type sweeper interface {
	Sweep(ctx context.Context, cutoff time.Time) (int, error)
}

// regionChecker is implemented by targets that live in a region (S3): the
// bucket must be in want (FERRY_REGION, promise P8).
type regionChecker interface {
	CheckRegion(ctx context.Context, want string) error
}

// ErrNotFound: the target has no object of that name.
var ErrNotFound = errors.New("backup: object not found")

// ErrBadName: an object name outside the allowed alphabet.
var ErrBadName = errors.New("backup: bad object name")

// nameRE is the object-name alphabet: lower-case segments separated by
// slashes, each starting with a letter or digit, so no name can be absolute,
// climb out with "..", or collide with a target's own partial files.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$`)

// MaxNameLen bounds object names (S3 allows 1024 bytes; we need far fewer).
const MaxNameLen = 200

// CheckName reports whether name may be used for an object.
func CheckName(name string) error {
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: want lower-case segments of a-z 0-9 . _ - separated by /", ErrBadName, name)
	}
	return nil
}
