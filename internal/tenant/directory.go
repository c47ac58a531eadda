package tenant

import "context"

// All lists every installation in any state, newest first: the staff
// console's tenants page (Account Data only; the shared secret stays sealed).
func (s *Store) All(ctx context.Context) ([]Installation, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+columns+` FROM installations ORDER BY created_at DESC, tenant_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Installation
	for rows.Next() {
		in, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}
