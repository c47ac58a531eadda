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

// rewrap wraps k again under the KEK's current primary key, so that a KEK
// version can be retired once every backup run has passed since rotation.
func (ks keyStore) rewrap(ctx context.Context, k *backupKey) (keyRecord, error) {
	rec, err := k.wrap(ks.kek)
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

// RewrapKeys re-wraps every backup key from one KEK to another, in one
// transaction; `ferry keys rotate-kek` calls it so that backups stay
// readable once the old KEK is gone. (Each backup run also re-wraps the
// current key under the KEK in use.)
func RewrapKeys(ctx context.Context, db *store.DB, from, to Wrapper) (int, error) {
	n := 0
	err := db.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, recipient, identity_wrapped, signing_public, signing_wrapped, created_at FROM backup_keys`)
		if err != nil {
			return err
		}
		var recs []keyRecord
		for rows.Next() {
			var r keyRecord
			if err := rows.Scan(&r.ID, &r.Recipient, &r.IdentityWrapped, &r.SigningPublic, &r.SigningWrapped, &r.CreatedAt); err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range recs {
			k, err := r.unwrap(from)
			if err != nil {
				return err
			}
			w, err := k.wrap(to)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE backup_keys SET identity_wrapped = $2, signing_wrapped = $3 WHERE id = $1`,
				w.ID, w.IdentityWrapped, w.SigningWrapped); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func marshalKeyRecord(r keyRecord) ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

func parseKeyRecord(b []byte) (keyRecord, error) {
	var r keyRecord
	if err := strictJSON(b, &r); err != nil || r.Format != "ferry-backup-key/1" || r.ID == "" {
		return r, errors.New("backup: not a backup key record")
	}
	return r, nil
}
