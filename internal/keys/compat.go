package keys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/tink"

	"ferry/internal/store"
)

// KEK is the key-encryption key as an AEAD: Ring.KEK for areas that seal a
// small secret of their own under it, and OpenLocalKEK for NewRing.
type KEK interface {
	tink.AEAD
	// Describe says where the KEK lives, without secrets, for logs and verify.
	Describe() string
}

// LocalKEK is the local key file as one AEAD (every key of the file opens;
// the file's primary seals). Rings made with NewRing read the same file as
// versioned keys.
type LocalKEK struct {
	tink.AEAD
	path string
}

var _ KEK = (*LocalKEK)(nil)

func (k *LocalKEK) Describe() string { return "local key file " + k.path }

// OpenLocalKEK loads the key file at path, creating it on first use.
func OpenLocalKEK(path string) (*LocalKEK, error) {
	f, err := LoadKeyFile(path)
	if errors.Is(err, ErrNoKeyFile) {
		f, err = CreateKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	h, err := handleOf(f.ks)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	return &LocalKEK{AEAD: a, path: path}, nil
}

// NewRing returns a key ring over db whose KEK versions come from kek's key
// file. Its start-up checks (Open's) run on first use, and a failure is
// returned by every operation; start-up itself calls Open.
func NewRing(db *store.DB, kek *LocalKEK) *Ring {
	r := newRing(db, Options{KeyFile: kek.path})
	r.lazy = true
	return r
}

// init runs Open's checks once for a ring made by NewRing.
func (r *Ring) init(ctx context.Context) error {
	if !r.lazy {
		return nil
	}
	r.initOnce.Do(func() { r.initErr = r.check(ctx) })
	return r.initErr
}

type lazyInit struct {
	lazy     bool
	initOnce sync.Once
	initErr  error
}

// kekHeader starts a ciphertext made by Ring.KEK: one marker byte, then the
// KEK version as 4 bytes big-endian. Tink output starts 0x00 or 0x01 and a
// KMS ciphertext blob 0x01, so no older ciphertext reads as versioned.
const kekHeader = 0xF5

// KEKVersionOf says which KEK version sealed ct (made by Ring.KEK).
func KEKVersionOf(ct []byte) (int64, bool) {
	if len(ct) < 5 || ct[0] != kekHeader {
		return 0, false
	}
	return int64(binary.BigEndian.Uint32(ct[1:5])), true
}

// KEK returns the key-encryption key as an AEAD for small secrets other areas
// keep (a backup key, a signing key): it seals under the primary version and
// records the version in the ciphertext; it opens any recorded version. Such
// secrets must be registered with RegisterWrapped, so that rotation re-wraps
// them and retirement counts them.
func (r *Ring) KEK() KEK { return ringKEK{r} }

type ringKEK struct{ r *Ring }

func (k ringKEK) Describe() string { return k.r.Describe() }

func (k ringKEK) Encrypt(plaintext, ad []byte) ([]byte, error) {
	ctx := context.Background()
	if err := k.r.init(ctx); err != nil {
		return nil, err
	}
	v, a, err := k.r.primary(ctx)
	if err != nil {
		return nil, err
	}
	ct, err := a.Encrypt(plaintext, ad)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 5, 5+len(ct))
	out[0] = kekHeader
	binary.BigEndian.PutUint32(out[1:], uint32(v))
	return append(out, ct...), nil
}

func (k ringKEK) Decrypt(ciphertext, ad []byte) ([]byte, error) {
	ctx := context.Background()
	if err := k.r.init(ctx); err != nil {
		return nil, err
	}
	if v, ok := KEKVersionOf(ciphertext); ok {
		a, err := k.r.kek(ctx, v)
		if err != nil {
			return nil, err
		}
		return a.Decrypt(ciphertext[5:], ad)
	}
	// Sealed before KEK versions: whichever version's key opens it.
	vs, err := loadVersions(ctx, k.r.db.SQL)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if a, err := k.r.kek(ctx, v.v); err == nil {
			if pt, err := a.Decrypt(ciphertext, ad); err == nil {
				return pt, nil
			}
		}
	}
	return nil, ErrDecrypt
}

// Wrapped is key material another area sealed with Ring.KEK and keeps in its
// own tables. Rotate re-wraps it under the new primary; Retire re-wraps it
// too and refuses while any of it is still under the version it retires.
type Wrapped interface {
	// RewrapKEK seals again, with kek, every item not under the primary
	// version (kek.Decrypt, then kek.Encrypt); it returns how many it moved.
	RewrapKEK(ctx context.Context, kek KEK) (int, error)
	// UnderKEKVersion counts the items still sealed under version v
	// (KEKVersionOf), or not versioned at all when v is 0.
	UnderKEKVersion(ctx context.Context, v int64) (int, error)
}

// RegisterWrapped adds an area's sealed secrets to rotation and retirement.
func (r *Ring) RegisterWrapped(name string, w Wrapped) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wrapped = append(r.wrapped, namedWrapped{name, w})
}

type namedWrapped struct {
	name string
	w    Wrapped
}

func (r *Ring) registered() []namedWrapped {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return append([]namedWrapped(nil), r.wrapped...)
}

// rewrapRegistered moves every registered area's secrets to the primary.
func (r *Ring) rewrapRegistered(ctx context.Context) (int, error) {
	total := 0
	for _, nw := range r.registered() {
		n, err := nw.w.RewrapKEK(ctx, r.KEK())
		total += n
		if err != nil {
			return total, fmt.Errorf("re-wrap %s: %w", nw.name, err)
		}
	}
	return total, nil
}

// stillUnder counts the registered areas' secrets under version v (and those
// sealed before versions, which may be under it).
func (r *Ring) stillUnder(ctx context.Context, v int64) (int, error) {
	total := 0
	for _, nw := range r.registered() {
		for _, ver := range []int64{v, 0} {
			n, err := nw.w.UnderKEKVersion(ctx, ver)
			if err != nil {
				return total, fmt.Errorf("count %s: %w", nw.name, err)
			}
			total += n
		}
	}
	return total, nil
}
