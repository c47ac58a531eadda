package keys

import (
	"context"
	"database/sql"
	"fmt"

	"ferry/internal/store"
)

// RotationResult says how many wrapped keysets were re-wrapped.
type RotationResult struct {
	TenantKeysets int
	DayKeysets    int
}

// Rewrap unwraps every live keyset with from and wraps it again with to, in
// one transaction: either every row moves to the new KEK or none does.
func Rewrap(ctx context.Context, db *store.DB, from, to KEK) (RotationResult, error) {
	var res RotationResult
	err := db.InTx(ctx, func(tx *store.Tx) error {
		type row struct {
			id     string
			a, p   []byte
			isDay  bool
			dayKey []byte
		}
		var rows []row
		q, err := tx.QueryContext(ctx, `SELECT tenant_id, aead_keyset, prf_keyset FROM tenant_keys WHERE shredded_at IS NULL`)
		if err != nil {
			return err
		}
		for q.Next() {
			var r row
			if err := q.Scan(&r.id, &r.a, &r.p); err != nil {
				q.Close()
				return err
			}
			rows = append(rows, r)
		}
		// A scan cut short ends like a finished one; only Err tells them
		// apart, and a missed keyset would be lost when the old key goes.
		if err := q.Err(); err != nil {
			q.Close()
			return fmt.Errorf("scan tenant keysets: %w", err)
		}
		q.Close()
		q, err = tx.QueryContext(ctx, `SELECT day, keyset FROM log_day_keys WHERE destroyed_at IS NULL`)
		if err != nil {
			return err
		}
		for q.Next() {
			var r row
			var w sql.RawBytes
			if err := q.Scan(&r.id, &w); err != nil {
				q.Close()
				return err
			}
			r.isDay, r.dayKey = true, append([]byte(nil), w...)
			rows = append(rows, r)
		}
		if err := q.Err(); err != nil {
			q.Close()
			return fmt.Errorf("scan log day keys: %w", err)
		}
		q.Close()
		for _, r := range rows {
			if r.isDay {
				w, err := rewrapOne(r.dayKey, from, to, dayAD(r.id))
				if err != nil {
					return fmt.Errorf("day %s: %w", r.id, err)
				}
				if _, err := tx.ExecContext(ctx, `UPDATE log_day_keys SET keyset = $2 WHERE day = $1`, r.id, w); err != nil {
					return err
				}
				res.DayKeysets++
				continue
			}
			wa, err := rewrapOne(r.a, from, to, tenantAD(r.id, "aead"))
			if err != nil {
				return fmt.Errorf("tenant keyset: %w", err)
			}
			wp, err := rewrapOne(r.p, from, to, tenantAD(r.id, "prf"))
			if err != nil {
				return fmt.Errorf("tenant keyset: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE tenant_keys SET aead_keyset = $2, prf_keyset = $3 WHERE tenant_id = $1`, r.id, wa, wp); err != nil {
				return err
			}
			res.TenantKeysets++
		}
		return nil
	})
	return res, err
}

func rewrapOne(w []byte, from, to KEK, ad []byte) ([]byte, error) {
	h, err := unwrap(w, from, ad)
	if err != nil {
		return nil, err
	}
	return wrap(h, to, ad)
}

// RotateLocalKEK adds a new primary key to the local key file, re-wraps every
// keyset under it, then drops the old key. The file is written before the
// database so that a crash in between leaves a KEK that opens both old and
// new wrappings.
func RotateLocalKEK(ctx context.Context, db *store.DB, old *LocalKEK) (*LocalKEK, RotationResult, error) {
	next, err := old.rotated()
	if err != nil {
		return nil, RotationResult{}, err
	}
	if err := writeKeyFile(old.path, next.handle); err != nil {
		return nil, RotationResult{}, err
	}
	res, err := Rewrap(ctx, db, old, next)
	if err != nil {
		return nil, res, err
	}
	final, err := next.withoutOldKeys()
	if err != nil {
		return nil, res, err
	}
	if err := writeKeyFile(old.path, final.handle); err != nil {
		return nil, res, err
	}
	return final, res, nil
}
