package errortrack

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"ferry/internal/keys"
	"ferry/internal/scrub"
	"ferry/internal/store"
)

// pseudonymKeyAD binds the wrapped key to its purpose.
var pseudonymKeyAD = []byte("ferry/errortrack-pseudonym-key")

// PseudonymLen is the length in hex characters of a user or session
// pseudonym (the same as keys.PseudonymLen).
const PseudonymLen = keys.PseudonymLen

// Pseudonyms computes the pseudonym kept of a Sentry user block and of a
// session's did: HMAC-SHA256 under a random key that only the KEK can
// unwrap, over scope (a tenant id, or "") and the value. So the same person
// in one tenant is always the same pseudonym, the same person in two
// tenants is two, and nobody without the key can test a guess.
type Pseudonyms struct {
	key []byte
}

var _ scrub.Hasher = (*Pseudonyms)(nil)

// Pseudonym implements scrub.Hasher.
func (p *Pseudonyms) Pseudonym(scope, value string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))[:PseudonymLen]
}

// LoadPseudonyms unwraps the pseudonym key, creating it on first use.
func LoadPseudonyms(ctx context.Context, db *store.DB, kek keys.KEK) (*Pseudonyms, error) {
	for range 2 {
		var wrapped []byte
		err := db.SQL.QueryRowContext(ctx, `SELECT wrapped FROM error_pseudonym_key WHERE id = 1`).Scan(&wrapped)
		switch {
		case err == nil:
			k, err := kek.Decrypt(wrapped, pseudonymKeyAD)
			if err != nil {
				return nil, fmt.Errorf("unwrap error-tracking pseudonym key: %w", err)
			}
			return &Pseudonyms{key: k}, nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("load error-tracking pseudonym key: %w", err)
		}
		k := make([]byte, 32)
		rand.Read(k)
		w, err := kek.Encrypt(k, pseudonymKeyAD)
		if err != nil {
			return nil, fmt.Errorf("wrap error-tracking pseudonym key: %w", err)
		}
		// Two replicas starting at once: one insert wins, both read it back.
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO error_pseudonym_key (id, wrapped, created_at) VALUES (1, $1, $2)
				ON CONFLICT (id) DO NOTHING`, w, tx.Now())
			return err
		}); err != nil {
			return nil, fmt.Errorf("store error-tracking pseudonym key: %w", err)
		}
	}
	return nil, errors.New("error-tracking pseudonym key vanished while loading")
}

// WrappedPseudonymKey is the pseudonym key as keys.Wrapped: KEK rotation
// re-wraps it and retirement counts it (Ring.RegisterWrapped).
type WrappedPseudonymKey struct{ DB *store.DB }

var _ keys.Wrapped = WrappedPseudonymKey{}

func (w WrappedPseudonymKey) load(ctx context.Context) ([]byte, bool, error) {
	var wrapped []byte
	err := w.DB.SQL.QueryRowContext(ctx, `SELECT wrapped FROM error_pseudonym_key WHERE id = 1`).Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return wrapped, err == nil, err
}

// RewrapKEK seals the key again under kek's primary version, if it is not
// already under it.
func (w WrappedPseudonymKey) RewrapKEK(ctx context.Context, kek keys.KEK) (int, error) {
	wrapped, ok, err := w.load(ctx)
	if err != nil || !ok {
		return 0, err
	}
	k, err := kek.Decrypt(wrapped, pseudonymKeyAD)
	if err != nil {
		return 0, fmt.Errorf("unwrap error-tracking pseudonym key: %w", err)
	}
	again, err := kek.Encrypt(k, pseudonymKeyAD)
	if err != nil {
		return 0, err
	}
	was, _ := keys.KEKVersionOf(wrapped)
	if now, _ := keys.KEKVersionOf(again); now == was {
		return 0, nil
	}
	_, err = w.DB.SQL.ExecContext(ctx, `UPDATE error_pseudonym_key SET wrapped = $1 WHERE id = 1`, again)
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// UnderKEKVersion is 1 when the key is sealed under version v (0: sealed
// before KEK versions), else 0.
func (w WrappedPseudonymKey) UnderKEKVersion(ctx context.Context, v int64) (int, error) {
	wrapped, ok, err := w.load(ctx)
	if err != nil || !ok {
		return 0, err
	}
	if got, versioned := keys.KEKVersionOf(wrapped); versioned && got == v || !versioned && v == 0 {
		return 1, nil
	}
	return 0, nil
}
