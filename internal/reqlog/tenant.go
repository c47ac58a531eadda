package reqlog

import (
	"context"

	"ferry/internal/store"
)

// What the end of a subscription and a closed Atlassian account ask of the
// request log: the purge of a tenant deletes its entries (tenant.Deleter),
// and a closed account's pseudonym is blanked from every entry of the tenant
// (privacy.Eraser). The sealed requests stay sealed under their day keys,
// which retention destroys as usual.

// CountTenant counts a tenant's request log entries.
func (s *Store) CountTenant(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM request_log WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// DeleteTenant deletes every request log entry of a tenant, in batches on
// SQLite so that request logging is not held up behind one long write.
func (s *Store) DeleteTenant(ctx context.Context, tenantID string) (int64, error) {
	if tenantID == "" {
		return 0, nil // entries without a tenant belong to nobody's purge
	}
	if s.db.Dialect == store.Postgres {
		return s.exec(ctx, `DELETE FROM request_log WHERE tenant_id = $1`, tenantID)
	}
	var total int64
	for {
		n, err := s.exec(ctx, `DELETE FROM request_log WHERE rowid IN
			(SELECT rowid FROM request_log WHERE tenant_id = $1 LIMIT $2)`, tenantID, DeleteBatch)
		total += n
		if err != nil || n < DeleteBatch {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// ForgetUser blanks a user's pseudonym from a tenant's entries: the user's
// Atlassian account was closed, and nothing may link the entries to it.
func (s *Store) ForgetUser(ctx context.Context, tenantID, pseudonym string) (int64, error) {
	if pseudonym == "" {
		return 0, nil
	}
	return s.exec(ctx, `UPDATE request_log SET user_pseudonym = '' WHERE tenant_id = $1 AND user_pseudonym = $2`, tenantID, pseudonym)
}

func (s *Store) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
