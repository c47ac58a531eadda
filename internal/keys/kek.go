package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrKeyFileExposed means the local key file can be read by group or others.
	ErrKeyFileExposed = errors.New("key file is readable by group or others")
	// ErrNoKeyFile means the local key file does not exist.
	ErrNoKeyFile = errors.New("key file does not exist")
)

// KeyFile is the local KEK: a Tink keyset of AES-256-GCM keys in a file only
// the owner can read. Each key is one KEK version ("local:<key id>"); keys
// stay in the file until their version is retired. It is the embedded
// default; production should use a KMS.
type KeyFile struct {
	path string

	mu sync.Mutex
	ks *tinkpb.Keyset
}

// LoadKeyFile reads an existing key file. A file that group or others can
// read is refused: anyone who can read it can unwrap every tenant key.
func LoadKeyFile(path string) (*KeyFile, error) {
	f := &KeyFile{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// CreateKeyFile writes a new key file with one key (mode 0600, in a 0700
// directory). It never replaces an existing file.
func CreateKeyFile(path string) (*KeyFile, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("new KEK: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("key file %s already exists", path)
	}
	ks := insecurecleartextkeyset.KeysetMaterial(h)
	if err := writeKeyFile(path, ks); err != nil {
		return nil, err
	}
	return &KeyFile{path: path, ks: ks}, nil
}

// Path is where the key file lives.
func (f *KeyFile) Path() string { return f.path }

// Reload reads the file again: another process may have added a version.
func (f *KeyFile) Reload() error {
	st, err := os.Stat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", f.path, ErrNoKeyFile)
	case err != nil:
		return fmt.Errorf("key file %s: %w", f.path, errors.Unwrap(err))
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s: %w (mode %04o); run: chmod 600 %s", f.path, ErrKeyFileExposed, st.Mode().Perm(), f.path)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("key file %s: %w", f.path, errors.Unwrap(err))
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return fmt.Errorf("key file %s is not a valid keyset", f.path)
	}
	f.mu.Lock()
	f.ks = insecurecleartextkeyset.KeysetMaterial(h)
	f.mu.Unlock()
	return nil
}

// Primary is the id of the key the file marks primary (the newest one).
func (f *KeyFile) Primary() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ks.GetPrimaryKeyId()
}

// IDs lists the ids of the keys in the file.
func (f *KeyFile) IDs() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for _, k := range f.ks.GetKey() {
		out = append(out, k.GetKeyId())
	}
	return out
}

// AEAD returns the primitive of exactly one key of the file: wrapping under
// a version must use that version's key, whatever the file's primary is.
func (f *KeyFile) AEAD(id uint32) (tink.AEAD, error) {
	f.mu.Lock()
	var key *tinkpb.Keyset_Key
	for _, k := range f.ks.GetKey() {
		if k.GetKeyId() == id && k.GetStatus() == tinkpb.KeyStatusType_ENABLED {
			key = k
		}
	}
	f.mu.Unlock()
	if key == nil {
		return nil, fmt.Errorf("key file %s has no key %d", f.path, id)
	}
	h, err := handleOf(&tinkpb.Keyset{PrimaryKeyId: id, Key: []*tinkpb.Keyset_Key{key}})
	if err != nil {
		return nil, fmt.Errorf("key %d of %s: %w", id, f.path, err)
	}
	return aead.New(h)
}

// Add appends a fresh key, marks it the file's primary and saves the file;
// the old keys stay. It holds the file's lock across read, change and write,
// so two administrators rotating at once cannot lose each other's key.
func (f *KeyFile) Add() (uint32, error) {
	var id uint32
	err := f.update(func(h *keyset.Handle) (*keyset.Handle, error) {
		m := keyset.NewManagerFromHandle(h)
		var err error
		if id, err = m.Add(aead.AES256GCMKeyTemplate()); err != nil {
			return nil, err
		}
		if err := m.SetPrimary(id); err != nil {
			return nil, err
		}
		return m.Handle()
	})
	return id, err
}

// Remove deletes a key (a retired version) from the file. The file's last
// key takes the file with it: the database no longer needs it (its keys
// moved to a KMS).
func (f *KeyFile) Remove(id uint32) error {
	return f.update(func(h *keyset.Handle) (*keyset.Handle, error) {
		ks := insecurecleartextkeyset.KeysetMaterial(h)
		keep := slices.DeleteFunc(slices.Clone(ks.GetKey()), func(k *tinkpb.Keyset_Key) bool { return k.GetKeyId() == id })
		switch {
		case len(keep) == len(ks.GetKey()):
			return h, nil // already gone
		case len(keep) == 0:
			return nil, errLastKey
		}
		primary := ks.GetPrimaryKeyId()
		if primary == id {
			primary = keep[len(keep)-1].GetKeyId()
		}
		return handleOf(&tinkpb.Keyset{PrimaryKeyId: primary, Key: keep})
	})
}

var errLastKey = errors.New("the last key of the file")

func (f *KeyFile) update(change func(*keyset.Handle) (*keyset.Handle, error)) error {
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock key file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock key file: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if err := f.Reload(); err != nil {
		return err
	}
	f.mu.Lock()
	h, err := handleOf(f.ks)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	h, err = change(h)
	if errors.Is(err, errLastKey) {
		if err := os.Remove(f.path); err != nil {
			return fmt.Errorf("remove key file: %w", err)
		}
		f.mu.Lock()
		f.ks = &tinkpb.Keyset{}
		f.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	ks := insecurecleartextkeyset.KeysetMaterial(h)
	if err := writeKeyFile(f.path, ks); err != nil {
		return err
	}
	f.mu.Lock()
	f.ks = ks
	f.mu.Unlock()
	return nil
}

// writeKeyFile writes atomically and durably: a crash leaves the old file or
// the new one, never half of either, and a rename that is not yet on disk
// cannot undo a key the database already uses.
func writeKeyFile(path string, ks *tinkpb.Keyset) error {
	h, err := handleOf(ks)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("encode KEK: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // umask cannot widen, but be explicit
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// handleOf turns keyset material back into a handle (through its binary
// form: the handle API takes no keyset proto directly).
func handleOf(ks *tinkpb.Keyset) (*keyset.Handle, error) {
	b, err := proto.Marshal(ks)
	if err != nil {
		return nil, err
	}
	return insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(b)))
}

// localRef names key id of the key file as a KEK version's key_ref.
func localRef(id uint32) string { return "local:" + strconv.FormatUint(uint64(id), 10) }

// parseLocalRef is the inverse of localRef.
func parseLocalRef(ref string) (uint32, bool) {
	s, ok := strings.CutPrefix(ref, "local:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// kmsURI matches the AWS KMS key URIs Ferry accepts.
var kmsURI = regexp.MustCompile(`^aws-kms://arn:aws(-[a-z]+)?:kms:([a-z]{2}(-gov)?-[a-z]+-\d):(\d{12}):(key|alias)/[A-Za-z0-9/_-]+$`)

// KMSRegion validates an aws-kms:// URI and returns its region.
func KMSRegion(uri string) (string, error) {
	m := kmsURI.FindStringSubmatch(uri)
	if m == nil {
		return "", fmt.Errorf("%q is not an aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID URI", uri)
	}
	return m[2], nil
}

// KMS opens AWS KMS keys by aws-kms:// URI. A KEK version in KMS is a key
// URI; the key itself never leaves KMS.
type KMS interface {
	AEAD(ctx context.Context, uri string) (tink.AEAD, error)
}
