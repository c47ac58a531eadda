package keys

import (
	"context"
	"encoding/binary"

	"ferry/internal/store"
)

// ForgetUnwrapped drops the unwrapped tenant and day keys this ring holds in
// memory, as their one-minute cache lifetime would: tests then see what the
// ring does when it must unwrap again, without waiting.
func (r *Ring) ForgetUnwrapped() {
	r.mu.Lock()
	clear(r.tenants)
	clear(r.days)
	r.mu.Unlock()
}

// WrapUnder re-wraps one tenant's keysets under KEK version v, as a server
// that read the primary just before a rotation would have left them.
func WrapUnder(ctx context.Context, db *store.DB, o Options, tenant string, v int64) error {
	r := newRing(db, o)
	var wa, wp []byte
	var from int64
	if err := db.SQL.QueryRowContext(ctx, `SELECT aead_keyset, prf_keyset, kek_version FROM tenant_keys WHERE tenant_id = $1`, tenant).Scan(&wa, &wp, &from); err != nil {
		return err
	}
	fk, err := r.kek(ctx, from)
	if err != nil {
		return err
	}
	tk, err := r.kek(ctx, v)
	if err != nil {
		return err
	}
	if wa, err = rewrapOne(wa, fk, tk, tenantAD(tenant, "aead")); err != nil {
		return err
	}
	if wp, err = rewrapOne(wp, fk, tk, tenantAD(tenant, "prf")); err != nil {
		return err
	}
	_, err = db.SQL.ExecContext(ctx, `UPDATE tenant_keys SET aead_keyset = $2, prf_keyset = $3, kek_version = $4 WHERE tenant_id = $1`, tenant, wa, wp, v)
	return err
}

// SealUnder seals a secret for the test area under version v, as a server
// that still read v as the primary would have.
func SealUnder(r *Ring, v int64, name string, area interface{ Put(string, []byte) }) error {
	a, err := r.kek(context.Background(), v)
	if err != nil {
		return err
	}
	ct, err := a.Encrypt([]byte("secret "+name), []byte(name))
	if err != nil {
		return err
	}
	out := make([]byte, 5, 5+len(ct))
	out[0] = kekHeader
	binary.BigEndian.PutUint32(out[1:], uint32(v))
	area.Put(name, append(out, ct...))
	return nil
}
