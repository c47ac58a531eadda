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

	"github.com/tink-crypto/tink-go-awskms/v2/integration/awskms"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEK is the key-encryption key: it only wraps and unwraps keysets.
type KEK interface {
	tink.AEAD
	// Describe says where the KEK lives, without secrets, for logs and verify.
	Describe() string
}

// ErrKeyFileExposed means the local key file can be read by group or others.
var ErrKeyFileExposed = errors.New("key file is readable by group or others")

// LocalKEK is a Tink AES-256-GCM keyset in a file that only the owner can
// read. It is the embedded default; production should use a KMS.
type LocalKEK struct {
	tink.AEAD
	path   string
	handle *keyset.Handle
}

var _ KEK = (*LocalKEK)(nil)

func (k *LocalKEK) Describe() string { return "local key file " + k.path }

// OpenLocalKEK loads the key file at path, creating it (mode 0600, in a 0700
// directory) on first start. A file that group or others can read is refused:
// anyone who can read it can unwrap every tenant key.
func OpenLocalKEK(path string) (*LocalKEK, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if err != nil {
			return nil, fmt.Errorf("new KEK: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create key directory: %w", err)
		}
		if err := writeKeyFile(path, h); err != nil {
			return nil, err
		}
		return newLocalKEK(path, h)
	case err != nil:
		return nil, fmt.Errorf("key file %s: %w", path, errors.Unwrap(err))
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %04o); run: chmod 600 %s", path, ErrKeyFileExposed, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, errors.Unwrap(err))
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("key file %s is not a valid keyset", path)
	}
	return newLocalKEK(path, h)
}

func newLocalKEK(path string, h *keyset.Handle) (*LocalKEK, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("KEK primitive: %w", err)
	}
	return &LocalKEK{AEAD: a, path: path, handle: h}, nil
}

// writeKeyFile writes atomically: a crash leaves the old file or the new one,
// never half of either.
func writeKeyFile(path string, h *keyset.Handle) error {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("encode KEK: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // umask cannot widen, but be explicit
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// rotated returns a KEK whose keyset has a fresh primary key and still holds
// the old keys, so data wrapped under them stays readable until re-wrapped.
func (k *LocalKEK) rotated() (*LocalKEK, error) {
	m := keyset.NewManagerFromHandle(k.handle)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, err
	}
	h, err := m.Handle()
	if err != nil {
		return nil, err
	}
	return newLocalKEK(k.path, h)
}

// withoutOldKeys drops every key but the primary, once all data is re-wrapped.
func (k *LocalKEK) withoutOldKeys() (*LocalKEK, error) {
	m := keyset.NewManagerFromHandle(k.handle)
	primary := k.handle.KeysetInfo().GetPrimaryKeyId()
	for _, ki := range k.handle.KeysetInfo().GetKeyInfo() {
		if ki.GetKeyId() != primary {
			if err := m.Disable(ki.GetKeyId()); err != nil {
				return nil, err
			}
			if err := m.Delete(ki.GetKeyId()); err != nil {
				return nil, err
			}
		}
	}
	h, err := m.Handle()
	if err != nil {
		return nil, err
	}
	return newLocalKEK(k.path, h)
}

// KMSKeyARN matches the AWS KMS key URIs Ferry accepts.
var kmsURI = regexp.MustCompile(`^aws-kms://arn:aws(-[a-z]+)?:kms:([a-z]{2}(-gov)?-[a-z]+-\d):(\d{12}):(key|alias)/[A-Za-z0-9/_-]+$`)

// KMSRegion validates an aws-kms:// URI and returns its region.
func KMSRegion(uri string) (string, error) {
	m := kmsURI.FindStringSubmatch(uri)
	if m == nil {
		return "", fmt.Errorf("%q is not an aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID URI", uri)
	}
	return m[2], nil
}

// KMSKEK wraps keysets with an AWS KMS key. Only the URI can be checked here:
// there is no KMS on a developer machine, and Ferry does not fake one.
type KMSKEK struct {
	tink.AEAD
	uri string
}

var _ KEK = (*KMSKEK)(nil)

func (k *KMSKEK) Describe() string { return "AWS KMS " + k.uri }

// OpenKMSKEK connects to AWS KMS with the default credential chain.
func OpenKMSKEK(ctx context.Context, uri string) (*KMSKEK, error) {
	if _, err := KMSRegion(uri); err != nil {
		return nil, err
	}
	c, err := awskms.NewClientWithOptions(uri)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS client: %w", err)
	}
	a, err := c.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS key: %w", err)
	}
	return &KMSKEK{AEAD: a, uri: uri}, nil
}
