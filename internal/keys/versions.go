package keys

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tink-crypto/tink-go/v2/tink"

	"ferry/internal/store"
)

// ErrKEKUnavailable: a wrapped key names a KEK version this process cannot
// open (its key is not in the key file, or KMS refuses).
var ErrKEKUnavailable = errors.New("keys: KEK version unavailable")

// WrongKEKError stops start-up: the configured key material is not the one
// this database's keys are wrapped under. Setting names the variable to fix.
type WrongKEKError struct {
	Setting string
	Reason  string
}

func (e *WrongKEKError) Error() string { return e.Setting + ": " + e.Reason }

// Options says where KEK versions come from.
type Options struct {
	// KeyFile is the local key file (FERRY_DATA_DIR/kek.json). Versions kept
	// in it are opened from it; it is created only for an empty database.
	KeyFile string
	// KMSKey is FERRY_KEK: an aws-kms:// URI, or empty for the local key file.
	KMSKey string
	// KMS opens aws-kms:// versions; nil when no KMS is configured.
	KMS KMS
}

// checkPlain is sealed under each KEK version as its key check value: the
// database can then prove which key it belongs to without holding the key.
var checkPlain = []byte("ferry KEK check value")

// checkAD binds a check value to its version, so it cannot be copied to
// another version's row.
func checkAD(v int64) []byte { return []byte("ferry/kek-check\x00" + strconv.FormatInt(v, 10)) }

func verifyCheck(a tink.AEAD, v int64, check []byte) bool {
	pt, err := a.Decrypt(check, checkAD(v))
	return err == nil && bytes.Equal(pt, checkPlain)
}

// Version describes one KEK version.
type Version struct {
	Version int64
	KeyRef  string // "local:<key id>" or aws-kms://…
	Primary bool
	Tenant  int // tenant keysets wrapped under it
	Day     int // log day keys wrapped under it
}

type versionRow struct {
	v       int64
	ref     string
	check   []byte
	primary bool
}

func loadVersions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]versionRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, key_ref, check_value, is_primary FROM kek_versions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("load KEK versions: %w", err)
	}
	defer rows.Close()
	var out []versionRow
	for rows.Next() {
		var r versionRow
		if err := rows.Scan(&r.v, &r.ref, &r.check, &r.primary); err != nil {
			return nil, fmt.Errorf("load KEK versions: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load KEK versions: %w", err)
	}
	return out, nil
}

// Open checks that the configured key material is this database's and
// returns the key ring. With no KEK version recorded and nothing wrapped, the
// configured KEK (a new key file if there is none) becomes version 1. A
// database from before KEK versions is adopted: each wrapped key must open
// under the key file (or FERRY_KEK), else start-up stops. Every recorded
// version must then open and pass its check value; a missing or foreign key
// file is never replaced.
func Open(ctx context.Context, db *store.DB, o Options) (*Ring, error) {
	r := newRing(db, o)
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Ring) check(ctx context.Context) error {
	db, o := r.db, r.o
	versions, err := loadVersions(ctx, db.SQL)
	if err != nil {
		return err
	}
	var wrapped, unversioned int
	if err := db.SQL.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM tenant_keys WHERE aead_keyset IS NOT NULL) + (SELECT count(*) FROM log_day_keys WHERE keyset IS NOT NULL),
		(SELECT count(*) FROM tenant_keys WHERE aead_keyset IS NOT NULL AND kek_version IS NULL) + (SELECT count(*) FROM log_day_keys WHERE keyset IS NOT NULL AND kek_version IS NULL)`).Scan(&wrapped, &unversioned); err != nil {
		return fmt.Errorf("count wrapped keys: %w", err)
	}
	switch {
	case len(versions) == 0 && wrapped == 0:
		if err := r.register(ctx); err != nil {
			return err
		}
	case unversioned > 0:
		if err := r.adopt(ctx, versions); err != nil {
			return err
		}
	}
	if versions, err = loadVersions(ctx, db.SQL); err != nil {
		return err
	}
	for _, v := range versions {
		if err := r.startCheck(ctx, v); err != nil {
			return err
		}
	}
	// FERRY_KEK must be one of the database's KMS versions. Only a database
	// still wholly on the key file may name a KMS key it does not use yet:
	// servers are configured with it before `rotate-kek --to` moves the keys.
	if o.KMSKey != "" && !containsRef(versions, o.KMSKey) && hasKMSVersion(versions) {
		return &WrongKEKError{Setting: "FERRY_KEK", Reason: fmt.Sprintf("%s is not a KEK version of this database (%s); to move its keys there run: ferry keys rotate-kek --to %s",
			o.KMSKey, describeVersions(versions), o.KMSKey)}
	}
	return nil
}

func hasKMSVersion(vs []versionRow) bool {
	for _, v := range vs {
		if strings.HasPrefix(v.ref, "aws-kms://") {
			return true
		}
	}
	return false
}

func containsRef(vs []versionRow, ref string) bool {
	for _, v := range vs {
		if v.ref == ref {
			return true
		}
	}
	return false
}

func describeVersions(vs []versionRow) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("version %d: %s", v.v, describeRef(v.ref)))
	}
	return strings.Join(parts, ", ")
}

func describeRef(ref string) string {
	if id, ok := parseLocalRef(ref); ok {
		return fmt.Sprintf("local key file, key %d", id)
	}
	return ref
}

// startCheck opens one recorded version and proves it with its check value,
// or says in one line which setting is wrong.
func (r *Ring) startCheck(ctx context.Context, v versionRow) error {
	a, err := r.openRef(ctx, v.ref)
	if err == nil && verifyCheck(a, v.v, v.check) {
		r.remember(v.v, a)
		return nil
	}
	if _, local := parseLocalRef(v.ref); local {
		if errors.Is(err, ErrNoKeyFile) {
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s is missing, but this database's keys are wrapped under KEK version %d (%s): restore the key file from its backup; a new key cannot open them",
				r.o.KeyFile, v.v, describeRef(v.ref))}
		}
		if errors.Is(err, ErrKeyFileExposed) {
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: err.Error()}
		}
		return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s does not hold KEK version %d (%s) of this database: is it another installation's key file? Restore this database's key file",
			r.o.KeyFile, v.v, describeRef(v.ref))}
	}
	if err == nil {
		err = errors.New("its check value does not open")
	}
	return &WrongKEKError{Setting: "FERRY_KEK", Reason: fmt.Sprintf("KEK version %d (%s) of this database cannot be used: %v", v.v, v.ref, oneLine(err))}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// openRef opens the key a version's key_ref names. A local key is read from
// the key file as it is on disk now: another process may have added it.
func (r *Ring) openRef(ctx context.Context, ref string) (tink.AEAD, error) {
	if id, ok := parseLocalRef(ref); ok {
		f, err := r.keyFile()
		if err != nil {
			return nil, err
		}
		return f.AEAD(id)
	}
	if !strings.HasPrefix(ref, "aws-kms://") {
		return nil, fmt.Errorf("unknown KEK reference %q", ref)
	}
	if r.o.KMS == nil {
		return nil, fmt.Errorf("%s is an AWS KMS key, but FERRY_KEK is not set", ref)
	}
	return r.o.KMS.AEAD(ctx, ref)
}

// keyFile loads the key file afresh from disk.
func (r *Ring) keyFile() (*KeyFile, error) {
	if r.o.KeyFile == "" {
		return nil, fmt.Errorf("no key file configured: %w", ErrNoKeyFile)
	}
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.file == nil {
		f, err := LoadKeyFile(r.o.KeyFile)
		if err != nil {
			return nil, err
		}
		r.file = f
		return f, nil
	}
	if err := r.file.Reload(); err != nil {
		return nil, err
	}
	return r.file, nil
}

// register records the configured KEK as version 1 of an empty database,
// creating the key file if there is none (and only then).
func (r *Ring) register(ctx context.Context) error {
	ref := r.o.KMSKey
	if ref == "" {
		f, err := LoadKeyFile(r.o.KeyFile)
		if errors.Is(err, ErrNoKeyFile) {
			f, err = CreateKeyFile(r.o.KeyFile)
		}
		if err != nil {
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: oneLine(err)}
		}
		r.fileMu.Lock()
		r.file = f
		r.fileMu.Unlock()
		ref = localRef(f.Primary())
	}
	a, err := r.openRef(ctx, ref)
	if err != nil {
		return &WrongKEKError{Setting: settingOf(ref), Reason: oneLine(err)}
	}
	return r.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kek_versions`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil // another process registered first; Open checks it
		}
		return insertVersion(ctx, tx, 1, ref, a, true)
	})
}

func settingOf(ref string) string {
	if strings.HasPrefix(ref, "aws-kms://") {
		return "FERRY_KEK"
	}
	return "FERRY_DATA_DIR"
}

func insertVersion(ctx context.Context, tx *store.Tx, v int64, ref string, a tink.AEAD, primary bool) error {
	check, err := a.Encrypt(checkPlain, checkAD(v))
	if err != nil {
		return fmt.Errorf("seal KEK check value: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO kek_versions (version, key_ref, check_value, is_primary, created_at) VALUES ($1, $2, $3, $4, $5)`,
		v, ref, check, primary, tx.Now())
	return err
}

// adopt gives every keyset wrapped before KEK versions existed the version of
// the key that opens it: each candidate key (the key file's keys, or
// FERRY_KEK) is tried in turn. A keyset no candidate opens stops start-up:
// the key file is missing or belongs to another installation.
func (r *Ring) adopt(ctx context.Context, known []versionRow) error {
	type cand struct {
		v   int64
		ref string
		a   tink.AEAD
		new bool
	}
	var cands []cand
	next := int64(1)
	for _, v := range known {
		if a, err := r.openRef(ctx, v.ref); err == nil && verifyCheck(a, v.v, v.check) {
			cands = append(cands, cand{v: v.v, ref: v.ref, a: a})
		}
		next = max(next, v.v+1)
	}
	if r.o.KMSKey != "" {
		if !containsRef(known, r.o.KMSKey) {
			a, err := r.openRef(ctx, r.o.KMSKey)
			if err != nil {
				return &WrongKEKError{Setting: "FERRY_KEK", Reason: oneLine(err)}
			}
			cands = append(cands, cand{v: next, ref: r.o.KMSKey, a: a, new: true})
		}
	} else {
		f, err := r.keyFile()
		if errors.Is(err, ErrNoKeyFile) {
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s is missing, but this database holds wrapped keys: restore the key file from its backup; a new key cannot open them", r.o.KeyFile)}
		}
		if err != nil {
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: oneLine(err)}
		}
		// The file's primary first: it wrapped everything since the last rotation.
		ids := f.IDs()
		primary := f.Primary()
		ids = append([]uint32{primary}, deleteID(ids, primary)...)
		for _, id := range ids {
			if containsRef(known, localRef(id)) {
				continue
			}
			a, err := f.AEAD(id)
			if err != nil {
				continue
			}
			cands = append(cands, cand{v: next, ref: localRef(id), a: a, new: true})
			next++
		}
	}
	type wrappedRow struct {
		day       bool
		id        string
		blob, prf []byte
	}
	var rows []wrappedRow
	q, err := r.db.SQL.QueryContext(ctx, `SELECT tenant_id, aead_keyset, prf_keyset FROM tenant_keys WHERE aead_keyset IS NOT NULL AND kek_version IS NULL`)
	if err != nil {
		return err
	}
	for q.Next() {
		var w wrappedRow
		if err := q.Scan(&w.id, &w.blob, &w.prf); err != nil {
			q.Close()
			return err
		}
		rows = append(rows, w)
	}
	if err := q.Err(); err != nil {
		q.Close()
		return err
	}
	q.Close()
	q, err = r.db.SQL.QueryContext(ctx, `SELECT day, keyset FROM log_day_keys WHERE keyset IS NOT NULL AND kek_version IS NULL`)
	if err != nil {
		return err
	}
	for q.Next() {
		w := wrappedRow{day: true}
		if err := q.Scan(&w.id, &w.blob); err != nil {
			q.Close()
			return err
		}
		rows = append(rows, w)
	}
	if err := q.Err(); err != nil {
		q.Close()
		return err
	}
	q.Close()
	owner := make([]int, len(rows))
	used := map[int]bool{}
	for i, w := range rows {
		owner[i] = -1
		for j, c := range cands {
			var err error
			if w.day {
				_, err = unwrap(w.blob, c.a, dayAD(w.id))
			} else if _, err = unwrap(w.blob, c.a, tenantAD(w.id, "aead")); err == nil {
				_, err = unwrap(w.prf, c.a, tenantAD(w.id, "prf"))
			}
			if err == nil {
				owner[i], used[j] = j, true
				break
			}
		}
		if owner[i] < 0 {
			what := "tenant " + w.id
			if w.day {
				what = "log day " + w.id
			}
			if r.o.KMSKey != "" {
				return &WrongKEKError{Setting: "FERRY_KEK", Reason: fmt.Sprintf("%s does not open this database's keys (%s and maybe more): is it another installation's key?", r.o.KMSKey, what)}
			}
			return &WrongKEKError{Setting: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s does not open this database's keys (%s and maybe more): is it another installation's key file? Restore this database's key file", r.o.KeyFile, what)}
		}
	}
	return r.db.InTx(ctx, func(tx *store.Tx) error {
		hasPrimary := false
		for _, v := range known {
			hasPrimary = hasPrimary || v.primary
		}
		for j, c := range cands {
			if !c.new || (!used[j] && j != 0) {
				continue
			}
			// The first candidate is the configured KEK: primary unless one is.
			if err := insertVersion(ctx, tx, c.v, c.ref, c.a, j == 0 && !hasPrimary); err != nil {
				return err
			}
		}
		for i, w := range rows {
			c := cands[owner[i]]
			var err error
			if w.day {
				_, err = tx.ExecContext(ctx, `UPDATE log_day_keys SET kek_version = $2 WHERE day = $1 AND kek_version IS NULL`, w.id, c.v)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE tenant_keys SET kek_version = $2 WHERE tenant_id = $1 AND kek_version IS NULL`, w.id, c.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func deleteID(ids []uint32, id uint32) []uint32 {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// kek returns the AEAD of a KEK version. A version this process has not seen
// (another process rotated) is looked up in the database and opened afresh:
// the key file is re-read, the KMS key opened, and its check value verified.
func (r *Ring) kek(ctx context.Context, v int64) (tink.AEAD, error) {
	r.vmu.Lock()
	a, ok := r.versions[v]
	r.vmu.Unlock()
	if ok {
		return a, nil
	}
	var ref string
	var check []byte
	err := r.db.SQL.QueryRowContext(ctx, `SELECT key_ref, check_value FROM kek_versions WHERE version = $1`, v).Scan(&ref, &check)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: version %d is not recorded", ErrKEKUnavailable, v)
	}
	if err != nil {
		return nil, fmt.Errorf("load KEK version %d: %w", v, err)
	}
	a, err = r.openRef(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%w: version %d (%s): %v", ErrKEKUnavailable, v, describeRef(ref), oneLine(err))
	}
	if !verifyCheck(a, v, check) {
		return nil, fmt.Errorf("%w: version %d (%s): the key does not open its check value", ErrKEKUnavailable, v, describeRef(ref))
	}
	r.remember(v, a)
	return a, nil
}

func (r *Ring) remember(v int64, a tink.AEAD) {
	r.vmu.Lock()
	r.versions[v] = a
	r.vmu.Unlock()
}

func (r *Ring) forget(v int64) {
	r.vmu.Lock()
	delete(r.versions, v)
	r.vmu.Unlock()
}

// primary returns the version new keysets are wrapped under. It is read
// from the database on every wrap (wraps are rare: a new tenant, a new day),
// so a server never keeps wrapping under a version another process replaced.
func (r *Ring) primary(ctx context.Context) (int64, tink.AEAD, error) {
	var v int64
	err := r.db.SQL.QueryRowContext(ctx, `SELECT version FROM kek_versions WHERE is_primary`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("%w: no primary KEK version recorded", ErrKEKUnavailable)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load primary KEK version: %w", err)
	}
	a, err := r.kek(ctx, v)
	return v, a, err
}

// Ready says whether this process can unwrap what is in the database: every
// recorded KEK version opens and passes its check value (re-verified with the
// key held in memory, so a version whose key changed or vanished is found),
// one is primary, and no wrapped key lacks a version.
func (r *Ring) Ready(ctx context.Context) error {
	if err := r.init(ctx); err != nil {
		return err
	}
	versions, err := loadVersions(ctx, r.db.SQL)
	if err != nil {
		return err
	}
	primaries := 0
	for _, v := range versions {
		if v.primary {
			primaries++
		}
		a, err := r.kek(ctx, v.v)
		if err != nil {
			return err
		}
		if !verifyCheck(a, v.v, v.check) {
			r.forget(v.v)
			return fmt.Errorf("%w: version %d (%s): the key held in memory no longer opens its check value", ErrKEKUnavailable, v.v, describeRef(v.ref))
		}
	}
	if primaries != 1 {
		return fmt.Errorf("%w: %d primary KEK versions recorded, want 1", ErrKEKUnavailable, primaries)
	}
	var unversioned int
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM tenant_keys WHERE aead_keyset IS NOT NULL AND kek_version IS NULL)
		+ (SELECT count(*) FROM log_day_keys WHERE keyset IS NOT NULL AND kek_version IS NULL)`).Scan(&unversioned); err != nil {
		return err
	}
	if unversioned > 0 {
		return fmt.Errorf("%w: %d wrapped keys record no KEK version", ErrKEKUnavailable, unversioned)
	}
	return nil
}

// Versions lists the KEK versions and how many keys each one wraps.
func (r *Ring) Versions(ctx context.Context) ([]Version, error) {
	if err := r.init(ctx); err != nil {
		return nil, err
	}
	vs, err := loadVersions(ctx, r.db.SQL)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(vs))
	for _, v := range vs {
		ver := Version{Version: v.v, KeyRef: v.ref, Primary: v.primary}
		if err := r.db.SQL.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM tenant_keys WHERE kek_version = $1),
			(SELECT count(*) FROM log_day_keys WHERE kek_version = $1)`, v.v).Scan(&ver.Tenant, &ver.Day); err != nil {
			return nil, err
		}
		out = append(out, ver)
	}
	return out, nil
}
