package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// InventoryItem is one place a data category of the statement is kept: the
// data inventory page counts its rows and shows the age of its oldest one,
// live. Each area lists its tables (internal/cli wiring); Table, TimeColumn
// and Where are code, never input.
type InventoryItem struct {
	Category   string // the statement's words, e.g. "Logs Data"
	Promise    string // e.g. "P7"
	Holds      string // what a row is, in a few words
	Table      string
	TimeColumn string // when a row was made: its minimum is the oldest record
	Where      string // optional filter, e.g. "shredded_at IS NULL"
	Retention  string // how long rows are kept
}

// InventoryRow is an item with its live numbers.
type InventoryRow struct {
	InventoryItem
	Rows   int64
	Oldest time.Time // zero when there are no rows
	Age    time.Duration
}

var ident = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func (c *Console) inventory(ctx context.Context) ([]InventoryRow, error) {
	now := c.d.Staff.Now()
	out := make([]InventoryRow, 0, len(c.d.Inventory))
	for _, it := range c.d.Inventory {
		if !ident.MatchString(it.Table) || !ident.MatchString(it.TimeColumn) {
			return nil, fmt.Errorf("console: inventory item %q: bad table or column name", it.Category)
		}
		where := ""
		if it.Where != "" {
			where = " WHERE " + it.Where
		}
		row := InventoryRow{InventoryItem: it}
		if err := c.d.DB.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+it.Table+where).Scan(&row.Rows); err != nil {
			return nil, fmt.Errorf("console: count %s: %w", it.Table, err)
		}
		// The row itself, not MIN(): SQLite returns an aggregate of a
		// timestamp column as text, a plain column as a time.
		var oldest sql.NullTime
		err := c.d.DB.SQL.QueryRowContext(ctx, `SELECT `+it.TimeColumn+` FROM `+it.Table+where+` ORDER BY `+it.TimeColumn+` LIMIT 1`).Scan(&oldest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("console: oldest %s: %w", it.Table, err)
		}
		if oldest.Valid {
			row.Oldest, row.Age = oldest.Time.UTC(), now.Sub(oldest.Time)
		}
		out = append(out, row)
	}
	return out, nil
}
