package tenant

import "context"

// All lists every installation in any state, newest first: the staff
// console's tenants page (Account Data only; the shared secret stays sealed).
func (s *Store) All(ctx context.Context) ([]Installation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM installations ORDER BY created_at DESC, tenant_id`)
}
