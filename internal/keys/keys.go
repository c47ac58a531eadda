// Package keys is the base of crypto-shredding (DESIGN.md "Key hierarchy").
//
// A KEK (local key file or AWS KMS) wraps one keyset pair per tenant — AEAD
// (AES-256-GCM) for data Ferry must be able to read back, PRF (HMAC-SHA256)
// for pseudonyms — and one AEAD keyset per day for request logs. Wrapped
// keysets are bound to their owner by associated data, so a row copied to
// another tenant or day does not unwrap. Shred and DestroyDayKey delete the
// wrapped keys: every ciphertext made under them becomes unreadable, in the
// live database and in any backup restored later.
package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"

	"ferry/internal/store"
)

var (
	// ErrShredded: the tenant's keys were destroyed; its data is gone for good.
	ErrShredded = errors.New("keys: tenant keys shredded")
	// ErrNoTenantKey: no keyset was ever created for this tenant.
	ErrNoTenantKey = errors.New("keys: no keyset for tenant")
	// ErrDayKeyDestroyed: the log key for that day was destroyed (retention).
	ErrDayKeyDestroyed = errors.New("keys: day key destroyed")
	// ErrDecrypt: the ciphertext is not valid under this key and associated data.
	ErrDecrypt = errors.New("keys: cannot decrypt: wrong key, tenant or associated data")
)

// PseudonymLen is the length in hex characters of every pseudonym.
const PseudonymLen = 32

// cacheTTL bounds how long an unwrapped keyset stays in memory. Another
// replica that shreds a tenant is therefore honoured here within this time.
const cacheTTL = time.Minute

// Ring holds the KEK versions and unwraps tenant and day keys on demand.
type Ring struct {
	db *store.DB
	o  Options

	fileMu sync.Mutex
	file   *KeyFile // loaded on first use of a local version, re-read on a miss

	vmu      sync.Mutex
	versions map[int64]tink.AEAD // KEK versions opened and checked

	mu      sync.Mutex
	tenants map[string]tenantEntry
	days    map[string]dayEntry

	wmu     sync.Mutex
	wrapped []namedWrapped // other areas' secrets sealed with KEK()

	lazyInit // NewRing: Open's checks on first use
}

type tenantEntry struct {
	aead tink.AEAD
	prf  prf.PRF
	at   time.Time
}

type dayEntry struct {
	aead tink.AEAD
	at   time.Time
}

func newRing(db *store.DB, o Options) *Ring {
	return &Ring{db: db, o: o, versions: map[int64]tink.AEAD{}, tenants: map[string]tenantEntry{}, days: map[string]dayEntry{}}
}

// Describe says where the KEK lives, without secrets, for logs.
func (r *Ring) Describe() string {
	if r.o.KMSKey != "" {
		return "AWS KMS " + r.o.KMSKey
	}
	return "local key file " + r.o.KeyFile
}

func tenantAD(tenant, kind string) []byte {
	return []byte("ferry/tenant-keyset/" + kind + "\x00" + tenant)
}
func dayAD(day string) []byte { return []byte("ferry/log-day-keyset\x00" + day) }

// dataAD binds a ciphertext to its tenant and to the caller's context (table,
// column, row id). The tenant id is length-prefixed so that no (tenant, ad)
// pair can be made to collide with another.
func dataAD(tenant string, ad []byte) []byte {
	b := make([]byte, 0, 8+len(tenant)+len(ad))
	b = fmt.Appendf(b, "%d:", len(tenant))
	b = append(b, tenant...)
	return append(b, ad...)
}

func wrap(h *keyset.Handle, kek tink.AEAD, ad []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, ad); err != nil {
		return nil, fmt.Errorf("wrap keyset: %w", err)
	}
	return buf.Bytes(), nil
}

func unwrap(b []byte, kek tink.AEAD, ad []byte) (*keyset.Handle, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(b)), kek, ad)
	if err != nil {
		return nil, fmt.Errorf("unwrap keyset: %w", err)
	}
	return h, nil
}

// EnsureTenant creates the tenant's keysets if they do not exist. It does not
// revive a shredded tenant: a tenant id, once shredded, stays shredded.
func (r *Ring) EnsureTenant(ctx context.Context, tenant string) error {
	if err := r.init(ctx); err != nil {
		return err
	}
	ah, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return err
	}
	ph, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return err
	}
	return r.wrapInsert(ctx, func(v int64, kek tink.AEAD) error {
		wa, err := wrap(ah, kek, tenantAD(tenant, "aead"))
		if err != nil {
			return err
		}
		wp, err := wrap(ph, kek, tenantAD(tenant, "prf"))
		if err != nil {
			return err
		}
		return r.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO tenant_keys (tenant_id, aead_keyset, prf_keyset, kek_version, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING`, tenant, wa, wp, v, tx.Now())
			return err
		})
	})
}

// wrapInsert wraps under the primary version and stores. If the version was
// retired between reading it and inserting (the foreign key refuses the row),
// it tries once more with the primary as it is then.
func (r *Ring) wrapInsert(ctx context.Context, insert func(v int64, kek tink.AEAD) error) error {
	var err error
	for range 2 {
		v, kek, perr := r.primary(ctx)
		if perr != nil {
			return perr
		}
		if err = insert(v, kek); err == nil {
			return nil
		}
		r.forget(v)
	}
	return err
}

func (r *Ring) tenant(ctx context.Context, tenant string) (tenantEntry, error) {
	if err := r.init(ctx); err != nil {
		return tenantEntry{}, err
	}
	r.mu.Lock()
	e, ok := r.tenants[tenant]
	r.mu.Unlock()
	if ok && time.Since(e.at) < cacheTTL {
		return e, nil
	}
	var wa, wp []byte
	var shredded sql.NullTime
	var v sql.NullInt64
	err := r.db.SQL.QueryRowContext(ctx, `SELECT aead_keyset, prf_keyset, shredded_at, kek_version FROM tenant_keys WHERE tenant_id = $1`, tenant).Scan(&wa, &wp, &shredded, &v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return e, ErrNoTenantKey
	case err != nil:
		return e, fmt.Errorf("load tenant keys: %w", err)
	case shredded.Valid || wa == nil || wp == nil:
		return e, ErrShredded
	case !v.Valid:
		return e, fmt.Errorf("%w: tenant keyset records no KEK version", ErrKEKUnavailable)
	}
	kek, err := r.kek(ctx, v.Int64)
	if err != nil {
		return e, err
	}
	ah, err := unwrap(wa, kek, tenantAD(tenant, "aead"))
	if err != nil {
		return e, err
	}
	ph, err := unwrap(wp, kek, tenantAD(tenant, "prf"))
	if err != nil {
		return e, err
	}
	a, err := aead.New(ah)
	if err != nil {
		return e, err
	}
	ps, err := prf.NewPRFSet(ph)
	if err != nil {
		return e, err
	}
	e = tenantEntry{aead: a, prf: ps.PRFs[ps.PrimaryID], at: time.Now()}
	r.mu.Lock()
	r.tenants[tenant] = e
	r.mu.Unlock()
	return e, nil
}

// Encrypt seals plaintext for tenant. ad names where the ciphertext belongs
// (table, column, row id); Decrypt must be given the same ad.
func (r *Ring) Encrypt(ctx context.Context, tenant string, ad, plaintext []byte) ([]byte, error) {
	e, err := r.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return e.aead.Encrypt(plaintext, dataAD(tenant, ad))
}

// Decrypt opens a ciphertext made by Encrypt with the same tenant and ad.
func (r *Ring) Decrypt(ctx context.Context, tenant string, ad, ciphertext []byte) ([]byte, error) {
	e, err := r.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	pt, err := e.aead.Decrypt(ciphertext, dataAD(tenant, ad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Pseudonym is a keyed, per-tenant stand-in for value (an accountId, say):
// equal values give equal pseudonyms within a tenant, nothing links them across
// tenants, and after Shred nobody can compute or reverse them.
func (r *Ring) Pseudonym(ctx context.Context, tenant, value string) (string, error) {
	e, err := r.tenant(ctx, tenant)
	if err != nil {
		return "", err
	}
	out, err := e.prf.ComputePRF([]byte(value), PseudonymLen/2)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(out), nil
}

// Shred destroys the tenant's keys. The row stays as a tombstone so that
// later reads fail with ErrShredded.
func (r *Ring) Shred(ctx context.Context, tenant string) error {
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenant_keys SET aead_keyset = NULL, prf_keyset = NULL, kek_version = NULL, shredded_at = $2
			WHERE tenant_id = $1 AND shredded_at IS NULL`, tenant, tx.Now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Unknown tenants get a tombstone too, so a late EnsureTenant cannot
			// create keys for an id that was meant to be gone.
			_, err = tx.ExecContext(ctx, `INSERT INTO tenant_keys (tenant_id, created_at, shredded_at) VALUES ($1, $2, $2)
				ON CONFLICT (tenant_id) DO NOTHING`, tenant, tx.Now())
		}
		return err
	})
	r.mu.Lock()
	delete(r.tenants, tenant)
	r.mu.Unlock()
	return err
}

// Day formats a time as the UTC day that names its log key.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// DayKey returns the AEAD for a day's request logs, creating it on first use.
func (r *Ring) DayKey(ctx context.Context, day time.Time) (tink.AEAD, error) {
	if err := r.init(ctx); err != nil {
		return nil, err
	}
	d := Day(day)
	r.mu.Lock()
	e, ok := r.days[d]
	r.mu.Unlock()
	if ok && time.Since(e.at) < cacheTTL {
		return e.aead, nil
	}
	a, err := r.loadDay(ctx, d)
	if errors.Is(err, sql.ErrNoRows) {
		h, herr := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if herr != nil {
			return nil, herr
		}
		if err := r.wrapInsert(ctx, func(v int64, kek tink.AEAD) error {
			w, err := wrap(h, kek, dayAD(d))
			if err != nil {
				return err
			}
			return r.db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO log_day_keys (day, keyset, kek_version, created_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (day) DO NOTHING`, d, w, v, tx.Now())
				return err
			})
		}); err != nil {
			return nil, fmt.Errorf("create day key: %w", err)
		}
		a, err = r.loadDay(ctx, d) // another replica may have won the race: use its key
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.days[d] = dayEntry{aead: a, at: time.Now()}
	r.mu.Unlock()
	return a, nil
}

func (r *Ring) loadDay(ctx context.Context, d string) (tink.AEAD, error) {
	var w []byte
	var destroyed sql.NullTime
	var v sql.NullInt64
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT keyset, destroyed_at, kek_version FROM log_day_keys WHERE day = $1`, d).Scan(&w, &destroyed, &v); err != nil {
		return nil, err
	}
	if destroyed.Valid || w == nil {
		return nil, ErrDayKeyDestroyed
	}
	if !v.Valid {
		return nil, fmt.Errorf("%w: day key records no KEK version", ErrKEKUnavailable)
	}
	kek, err := r.kek(ctx, v.Int64)
	if err != nil {
		return nil, err
	}
	h, err := unwrap(w, kek, dayAD(d))
	if err != nil {
		return nil, err
	}
	return aead.New(h)
}

// DestroyDayKey deletes the key of a day's request logs.
func (r *Ring) DestroyDayKey(ctx context.Context, day time.Time) error {
	d := Day(day)
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO log_day_keys (day, created_at, destroyed_at) VALUES ($1, $2, $2)
			ON CONFLICT (day) DO UPDATE SET keyset = NULL, kek_version = NULL, destroyed_at = COALESCE(log_day_keys.destroyed_at, $2)`, d, tx.Now())
		return err
	})
	r.mu.Lock()
	delete(r.days, d)
	r.mu.Unlock()
	return err
}

// DayKeysBefore lists the days before cutoff whose keys still exist.
func (r *Ring) DayKeysBefore(ctx context.Context, cutoff time.Time) ([]time.Time, error) {
	rows, err := r.db.SQL.QueryContext(ctx, `SELECT day FROM log_day_keys WHERE day < $1 AND destroyed_at IS NULL ORDER BY day`, Day(cutoff))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Fingerprint identifies the KEK wrapping of a row without revealing it
// (used by verify to show that secret columns hold ciphertext).
func Fingerprint(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
