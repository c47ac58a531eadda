package backup

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"

	"ferry/internal/keys"
	"ferry/internal/store"
)

// Wrapper wraps small secrets: the KEK (keys.Ring.KEK()) through its AEAD
// interface. Nothing here reads key files or knows which KEK version wraps
// what; re-wrapping on every run moves the backup key to the current one.
type Wrapper interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// backupKey is the server's one restore identity and its manifest-signing
// key. Both exist in the clear only in memory; at rest they are wrapped by
// the KEK, in the database and, for disaster recovery, beside the backups
// (identity/<id>.json), where they are useless without the KEK.
type backupKey struct {
	ID        string
	Identity  *age.X25519Identity
	Signer    ed25519.PrivateKey
	CreatedAt time.Time
}

// keyRecord is a backupKey at rest.
type keyRecord struct {
	Format          string    `json:"format"` // ferry-backup-key/1
	ID              string    `json:"id"`
	Recipient       string    `json:"recipient"`
	IdentityWrapped []byte    `json:"identity_wrapped"`
	SigningPublic   []byte    `json:"signing_public"`
	SigningWrapped  []byte    `json:"signing_wrapped"`
	CreatedAt       time.Time `json:"created_at"`
	// KEKVersion is set on the copy beside the backups, whose blobs carry no
	// version header: a server rebuilt after a disaster numbers its KEK
	// versions afresh, and opens an unversioned blob with whichever version
	// holds the key.
	KEKVersion int64 `json:"kek_version,omitempty"`
}

// portable returns the copy of r kept beside the backups.
func (r keyRecord) portable() keyRecord {
	if v, ok := keys.KEKVersionOf(r.IdentityWrapped); ok {
		if vs, ok := keys.KEKVersionOf(r.SigningWrapped); ok && vs == v {
			r.IdentityWrapped, r.SigningWrapped, r.KEKVersion = r.IdentityWrapped[5:], r.SigningWrapped[5:], v
		}
	}
	return r
}

// Associated data binds each wrapped secret to its purpose and key id, so a
// wrapped identity cannot be passed off as a signing seed or as another key.
func identityAD(id string) []byte { return []byte("ferry/backup-key/identity\x00" + id) }
func signingAD(id string) []byte  { return []byte("ferry/backup-key/signing\x00" + id) }

func newBackupKey(now time.Time) (*backupKey, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	rand.Read(b)
	return &backupKey{ID: "k" + hex.EncodeToString(b), Identity: id, Signer: priv, CreatedAt: now.UTC()}, nil
}

func (k *backupKey) public() ed25519.PublicKey { return k.Signer.Public().(ed25519.PublicKey) }

func (k *backupKey) wrap(kek Wrapper) (keyRecord, error) {
	wi, err := kek.Encrypt([]byte(k.Identity.String()), identityAD(k.ID))
	if err != nil {
		return keyRecord{}, fmt.Errorf("wrap backup identity: %w", err)
	}
	ws, err := kek.Encrypt(k.Signer.Seed(), signingAD(k.ID))
	if err != nil {
		return keyRecord{}, fmt.Errorf("wrap backup signing key: %w", err)
	}
	return keyRecord{Format: "ferry-backup-key/1", ID: k.ID, Recipient: k.Identity.Recipient().String(),
		IdentityWrapped: wi, SigningPublic: k.public(), SigningWrapped: ws, CreatedAt: k.CreatedAt}, nil
}

// ErrKeyUnwrap: the backup key cannot be unwrapped with this KEK.
var ErrKeyUnwrap = errors.New("backup: backup key cannot be unwrapped with this KEK")

// unwrap opens a record with the KEK. The public parts are recomputed from
// the secrets and must match what the record says, so a record edited at
// rest is refused rather than trusted.
func (r keyRecord) unwrap(kek Wrapper) (*backupKey, error) {
	is, err := kek.Decrypt(r.IdentityWrapped, identityAD(r.ID))
	if err != nil {
		return nil, fmt.Errorf("%w (key %s)", ErrKeyUnwrap, r.ID)
	}
	id, err := age.ParseX25519Identity(string(is))
	if err != nil {
		return nil, fmt.Errorf("%w (key %s): bad identity", ErrKeyUnwrap, r.ID)
	}
	seed, err := kek.Decrypt(r.SigningWrapped, signingAD(r.ID))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w (key %s)", ErrKeyUnwrap, r.ID)
	}
	k := &backupKey{ID: r.ID, Identity: id, Signer: ed25519.NewKeyFromSeed(seed), CreatedAt: r.CreatedAt}
	if id.Recipient().String() != r.Recipient || subtle.ConstantTimeCompare(k.public(), r.SigningPublic) != 1 {
		return nil, fmt.Errorf("%w (key %s): public parts do not match", ErrKeyUnwrap, r.ID)
	}
	return k, nil
}

func identityObject(id string) string { return "identity/" + id + ".json" }

// keyStore keeps backup keys in the database table backup_keys.
type keyStore struct {
	db  *store.DB
	kek Wrapper
}

func (ks keyStore) load(ctx context.Context, id string) (keyRecord, error) {
	var r keyRecord
	err := ks.db.SQL.QueryRowContext(ctx, `SELECT id, recipient, identity_wrapped, signing_public, signing_wrapped, created_at
		FROM backup_keys WHERE id = $1`, id).Scan(&r.ID, &r.Recipient, &r.IdentityWrapped, &r.SigningPublic, &r.SigningWrapped, &r.CreatedAt)
	r.Format = "ferry-backup-key/1"
	return r, err
}

// current returns the newest backup key, creating one on first use.
func (ks keyStore) current(ctx context.Context) (*backupKey, error) {
	var id string
	err := ks.db.SQL.QueryRowContext(ctx, `SELECT id FROM backup_keys ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		k, err := newBackupKey(ks.db.Now())
		if err != nil {
			return nil, err
		}
		rec, err := k.wrap(ks.kek)
		if err != nil {
			return nil, err
		}
		if err := ks.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO backup_keys (id, recipient, identity_wrapped, signing_public, signing_wrapped, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, rec.ID, rec.Recipient, rec.IdentityWrapped, rec.SigningPublic, rec.SigningWrapped, rec.CreatedAt)
			return err
		}); err != nil {
			return nil, fmt.Errorf("store backup key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load backup key: %w", err)
	}
	rec, err := ks.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load backup key: %w", err)
	}
	return rec.unwrap(ks.kek)
}

// rewrap wraps k again under kek's primary version.
func (ks keyStore) rewrap(ctx context.Context, k *backupKey, kek Wrapper) (keyRecord, error) {
	rec, err := k.wrap(kek)
	if err != nil {
		return rec, err
	}
	err = ks.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE backup_keys SET identity_wrapped = $2, signing_wrapped = $3 WHERE id = $1`,
			rec.ID, rec.IdentityWrapped, rec.SigningWrapped)
		return err
	})
	return rec, err
}

// wrappedKeys lets KEK rotation and retirement (keys.Ring.RegisterWrapped)
// see the backup keys: rotation re-wraps them under the new primary version,
// in the database and in the copies beside the backups, and retirement
// waits until none is left under the version it retires.
type wrappedKeys struct{ s *Service }

var _ keys.Wrapped = wrappedKeys{}

// Wrapped returns the backup keys as key material for KEK rotation; the
// server registers it with its key ring.
func (s *Service) Wrapped() keys.Wrapped { return wrappedKeys{s} }

func (w wrappedKeys) records(ctx context.Context) ([]keyRecord, error) {
	rows, err := w.s.o.DB.SQL.QueryContext(ctx, `SELECT id, recipient, identity_wrapped, signing_public, signing_wrapped, created_at FROM backup_keys`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []keyRecord
	for rows.Next() {
		r := keyRecord{Format: "ferry-backup-key/1"}
		if err := rows.Scan(&r.ID, &r.Recipient, &r.IdentityWrapped, &r.SigningPublic, &r.SigningWrapped, &r.CreatedAt); err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// RewrapKEK re-wraps every backup key not under kek's primary version and
// rewrites its copy beside the backups.
func (w wrappedKeys) RewrapKEK(ctx context.Context, kek keys.KEK) (int, error) {
	probe, err := kek.Encrypt([]byte("probe"), []byte("ferry/backup-key/probe"))
	if err != nil {
		return 0, err
	}
	primary, _ := keys.KEKVersionOf(probe)
	recs, err := w.records(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		vi, _ := keys.KEKVersionOf(r.IdentityWrapped)
		vs, _ := keys.KEKVersionOf(r.SigningWrapped)
		copyV, err := w.targetVersion(ctx, r.ID)
		if err != nil {
			return n, err
		}
		if vi == primary && vs == primary && copyV == primary {
			continue
		}
		k, err := r.unwrap(kek)
		if err != nil {
			return n, err
		}
		if _, err := w.s.storeKey(ctx, k, kek); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// UnderKEKVersion counts the backup keys (in the database and beside the
// backups) still wrapped under version v (0: not versioned).
func (w wrappedKeys) UnderKEKVersion(ctx context.Context, v int64) (int, error) {
	recs, err := w.records(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		vi, _ := keys.KEKVersionOf(r.IdentityWrapped)
		vs, _ := keys.KEKVersionOf(r.SigningWrapped)
		vc, err := w.targetVersion(ctx, r.ID)
		if err != nil {
			return n, err
		}
		if vi == v || vs == v || vc == v {
			n++
		}
	}
	return n, nil
}

// targetVersion is the KEK version of a key's copy beside the backups;
// -1 when there is no copy (nothing to re-wrap there).
func (w wrappedKeys) targetVersion(ctx context.Context, id string) (int64, error) {
	b, err := w.s.read(ctx, identityObject(id), 1<<16)
	if errors.Is(err, ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	rec, err := parseKeyRecord(b)
	if err != nil {
		return 0, err
	}
	return rec.KEKVersion, nil
}

func marshalKeyRecord(r keyRecord) ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

func parseKeyRecord(b []byte) (keyRecord, error) {
	var r keyRecord
	if err := strictJSON(b, &r); err != nil || r.Format != "ferry-backup-key/1" || r.ID == "" {
		return r, errors.New("backup: not a backup key record")
	}
	return r, nil
}
