package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/tink"

	"ferry/internal/store"
)

// RotationResult says what a rotation or retirement did.
type RotationResult struct {
	Version       int64 // the primary KEK version afterwards
	TenantKeysets int   // tenant keysets re-wrapped under it
	DayKeysets    int   // log day keys re-wrapped under it
	Other         int   // other areas' secrets (RegisterWrapped) re-wrapped under it
}

// ErrStillWrapped: a KEK version cannot be retired while keys are wrapped
// under it.
var ErrStillWrapped = errors.New("keys: KEK version still wraps keys")

// Rotate adds a KEK version, makes it primary and re-wraps every live keyset
// under it. to is an aws-kms:// URI, or empty for a new key in the local key
// file. Nothing is removed: the old versions stay readable, so servers that
// have not yet seen the new version keep working, and any keyset a server
// wraps under the old primary meanwhile is still readable (Retire re-wraps
// it). The key file is saved before the version is recorded, so no database
// row ever names a key the file does not hold.
//
// Rotation is safe while any number of servers run: each reads the primary
// version from the database before wrapping, and opens a version it has not
// seen (re-reading the key file) when it meets one.
func (r *Ring) Rotate(ctx context.Context, to string) (RotationResult, error) {
	if err := r.init(ctx); err != nil {
		return RotationResult{}, err
	}
	var ref string
	var a tink.AEAD
	switch {
	case to == "":
		f, err := r.keyFile()
		if err != nil {
			return RotationResult{}, err
		}
		id, err := f.Add()
		if err != nil {
			return RotationResult{}, fmt.Errorf("add a key to %s: %w", f.Path(), err)
		}
		ref = localRef(id)
		if a, err = f.AEAD(id); err != nil {
			return RotationResult{}, err
		}
	case strings.HasPrefix(to, "aws-kms://"):
		if _, err := KMSRegion(to); err != nil {
			return RotationResult{}, err
		}
		if r.o.KMS == nil {
			return RotationResult{}, fmt.Errorf("rotating to %s needs FERRY_KEK set to an AWS KMS key (the KMS client and its region)", to)
		}
		var err error
		if a, err = r.o.KMS.AEAD(ctx, to); err != nil {
			return RotationResult{}, err
		}
		ref = to
	default:
		return RotationResult{}, fmt.Errorf("--to %q: want an aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID URI, or nothing for a new key in the key file", to)
	}
	var v int64
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kek_versions WHERE key_ref = $1`, ref).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s is already a KEK version of this database", describeRef(ref))
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) + 1 FROM kek_versions`).Scan(&v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE kek_versions SET is_primary = FALSE WHERE is_primary`); err != nil {
			return err
		}
		return insertVersion(ctx, tx, v, ref, a, true)
	})
	if err != nil {
		return RotationResult{}, fmt.Errorf("record KEK version: %w", err)
	}
	r.remember(v, a)
	res, err := r.rewrapAll(ctx, v, a)
	res.Version = v
	if err != nil {
		return res, err
	}
	res.Other, err = r.rewrapRegistered(ctx)
	return res, err
}

// rewrapAll moves every live keyset not under version to to it, row by row.
// Each update is a compare-and-swap on the row's version and keyset, so a
// concurrent shred or day-key destruction is never undone, and a crash
// leaves every row readable under the version it names. It scans again until
// a scan finds nothing, catching keysets that servers wrapped under the old
// primary while the rotation ran.
func (r *Ring) rewrapAll(ctx context.Context, to int64, toKEK tink.AEAD) (RotationResult, error) {
	var res RotationResult
	for pass := 0; pass < 5; pass++ {
		moved, err := r.rewrapPass(ctx, to, toKEK, &res)
		if err != nil || moved == 0 {
			return res, err
		}
	}
	return res, nil
}

type pendingRow struct {
	day     bool
	id      string
	v       int64
	blob    []byte
	prfBlob []byte
}

func (r *Ring) rewrapPass(ctx context.Context, to int64, toKEK tink.AEAD, res *RotationResult) (int, error) {
	rows, err := r.pending(ctx, to)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, p := range rows {
		from, err := r.kek(ctx, p.v)
		if err != nil {
			return moved, err
		}
		if p.day {
			w, err := rewrapOne(p.blob, from, toKEK, dayAD(p.id))
			if err != nil {
				return moved, fmt.Errorf("log day key %s: %w", p.id, err)
			}
			n, err := r.exec(ctx, `UPDATE log_day_keys SET keyset = $2, kek_version = $3
				WHERE day = $1 AND kek_version = $4 AND keyset = $5 AND destroyed_at IS NULL`, p.id, w, to, p.v, p.blob)
			if err != nil {
				return moved, err
			}
			res.DayKeysets += n
			moved += n
			continue
		}
		wa, err := rewrapOne(p.blob, from, toKEK, tenantAD(p.id, "aead"))
		if err != nil {
			return moved, fmt.Errorf("tenant keyset: %w", err)
		}
		wp, err := rewrapOne(p.prfBlob, from, toKEK, tenantAD(p.id, "prf"))
		if err != nil {
			return moved, fmt.Errorf("tenant keyset: %w", err)
		}
		n, err := r.exec(ctx, `UPDATE tenant_keys SET aead_keyset = $2, prf_keyset = $3, kek_version = $4
			WHERE tenant_id = $1 AND kek_version = $5 AND aead_keyset = $6 AND shredded_at IS NULL`, p.id, wa, wp, to, p.v, p.blob)
		if err != nil {
			return moved, err
		}
		res.TenantKeysets += n
		moved += n
	}
	return moved, nil
}

// pending lists every live keyset wrapped under a version other than to. A
// scan cut short is an error, never a shorter list: a missed keyset would
// stay under a version that is about to be retired.
func (r *Ring) pending(ctx context.Context, to int64) ([]pendingRow, error) {
	var out []pendingRow
	q, err := r.db.SQL.QueryContext(ctx, `SELECT tenant_id, kek_version, aead_keyset, prf_keyset FROM tenant_keys
		WHERE kek_version IS NOT NULL AND kek_version <> $1 AND shredded_at IS NULL AND aead_keyset IS NOT NULL`, to)
	if err != nil {
		return nil, err
	}
	for q.Next() {
		var p pendingRow
		if err := q.Scan(&p.id, &p.v, &p.blob, &p.prfBlob); err != nil {
			q.Close()
			return nil, err
		}
		out = append(out, p)
	}
	if err := q.Err(); err != nil {
		q.Close()
		return nil, fmt.Errorf("scan tenant keysets: %w", err)
	}
	q.Close()
	q, err = r.db.SQL.QueryContext(ctx, `SELECT day, kek_version, keyset FROM log_day_keys
		WHERE kek_version IS NOT NULL AND kek_version <> $1 AND destroyed_at IS NULL AND keyset IS NOT NULL`, to)
	if err != nil {
		return nil, err
	}
	for q.Next() {
		p := pendingRow{day: true}
		if err := q.Scan(&p.id, &p.v, &p.blob); err != nil {
			q.Close()
			return nil, err
		}
		out = append(out, p)
	}
	if err := q.Err(); err != nil {
		q.Close()
		return nil, fmt.Errorf("scan log day keys: %w", err)
	}
	q.Close()
	return out, nil
}

func (r *Ring) exec(ctx context.Context, query string, args ...any) (int, error) {
	var n int64
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

func rewrapOne(w []byte, from, to tink.AEAD, ad []byte) ([]byte, error) {
	h, err := unwrap(w, from, ad)
	if err != nil {
		return nil, err
	}
	return wrap(h, to, ad)
}

// Retire removes a KEK version that is not primary. It first re-wraps under
// the primary whatever is still wrapped under the version (keysets a server
// wrapped under it during the rotation), then deletes the version's row: the
// database's foreign keys refuse that delete while any key still names the
// version, also one a replica is inserting at that moment, so a version is
// only ever retired with nothing wrapped under it. A local key leaves the
// key file last, after the database no longer names it.
func (r *Ring) Retire(ctx context.Context, v int64) (RotationResult, error) {
	var res RotationResult
	if err := r.init(ctx); err != nil {
		return res, err
	}
	versions, err := loadVersions(ctx, r.db.SQL)
	if err != nil {
		return res, err
	}
	var target *versionRow
	for i := range versions {
		if versions[i].v == v {
			target = &versions[i]
		}
	}
	if target == nil {
		return res, fmt.Errorf("KEK version %d is not a version of this database (%s)", v, describeVersions(versions))
	}
	if target.primary {
		return res, fmt.Errorf("KEK version %d is primary: rotate to a new version first (ferry keys rotate-kek)", v)
	}
	pv, pa, err := r.primary(ctx)
	if err != nil {
		return res, err
	}
	res.Version = pv
	if res, err = r.rewrapAll(ctx, pv, pa); err != nil {
		res.Version = pv
		return res, err
	}
	res.Version = pv
	if res.Other, err = r.rewrapRegistered(ctx); err != nil {
		return res, err
	}
	if n, err := r.stillUnder(ctx, v); err != nil || n > 0 {
		if err == nil {
			err = fmt.Errorf("%w: %d secrets of other areas are still sealed under version %d or unversioned; run retire-kek again", ErrStillWrapped, n, v)
		}
		return res, err
	}
	err = r.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM tenant_keys WHERE kek_version = $1)
			+ (SELECT count(*) FROM log_day_keys WHERE kek_version = $1)`, v).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %d keys are still wrapped under version %d; run retire-kek again", ErrStillWrapped, n, v)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM kek_versions WHERE version = $1 AND NOT is_primary`, v)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrStillWrapped) {
			err = fmt.Errorf("%w: the database refused to drop version %d (%v); run retire-kek again", ErrStillWrapped, v, err)
		}
		return res, err
	}
	r.forget(v)
	if id, ok := parseLocalRef(target.ref); ok {
		f, err := r.keyFile()
		if err != nil {
			return res, err
		}
		if err := f.Remove(id); err != nil {
			return res, fmt.Errorf("KEK version %d is retired, but its key is still in %s: %w", v, f.Path(), err)
		}
	}
	return res, nil
}
