package cli

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"ferry/internal/config"
	"ferry/internal/store"
)

// TestInventoryAccountsForEveryTable reads the migrated schema on both
// engines: every table is in the console's data inventory (with its
// promise and retention) or exempt with a reason, and every inventory line
// names a table and time column that exist. A table added without a
// decision about which data category it holds fails here.
func TestInventoryAccountsForEveryTable(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		vars := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "FERRY_DATABASE_URL": dbURL}
		cfg, _, err := config.Load("test", nil, func(k string) string { return vars[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := openApp(context.Background(), env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		q := `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition`
		if a.db.Dialect == store.SQLite {
			q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
		}
		rows, err := a.db.SQL.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			if !strings.HasPrefix(n, "river_") { // the job queue's own tables (internal/jobs)
				tables = append(tables, n)
			}
		}
		rows.Close()
		sort.Strings(tables)
		inv := inventory(a.cfg)
		listed := map[string]bool{}
		for _, it := range inv {
			listed[it.Table] = true
			if !slices.Contains(tables, it.Table) {
				t.Errorf("inventory line %q names table %s, which the schema does not have", it.Category, it.Table)
				continue
			}
			where := ""
			if it.Where != "" {
				where = " WHERE " + it.Where
			}
			if _, err := a.db.SQL.Exec(`SELECT COUNT(*), MIN(` + it.TimeColumn + `) FROM ` + it.Table + where); err != nil {
				t.Errorf("inventory line for %s: %v", it.Table, err)
			}
			if it.Category == "" || it.Promise == "" || it.Holds == "" || it.Retention == "" {
				t.Errorf("inventory line for %s is incomplete: %+v", it.Table, it)
			}
		}
		for _, table := range tables {
			why, exempt := inventoryExempt[table]
			switch {
			case listed[table] && exempt:
				t.Errorf("table %s is both in the inventory and exempt from it", table)
			case !listed[table] && !exempt:
				t.Errorf("table %s is neither in the data inventory (internal/cli/console.go inventory) nor exempt from it: say which data category it holds", table)
			case exempt && len(why) < 40:
				t.Errorf("table %s is exempt without a reason worth the name: %q", table, why)
			}
		}
		for table := range inventoryExempt {
			if !slices.Contains(tables, table) {
				t.Errorf("table %s is exempt from the inventory but not in the schema", table)
			}
		}
		// The tables the brief of the console pages names, with the promise each serves.
		for table, promise := range map[string]string{"error_events": "P5", "error_outbox": "P5", "backup_runs": "P11", "tenant_deletions": "P16"} {
			found := false
			for _, it := range inv {
				if it.Table == table && strings.Contains(it.Promise, promise) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s is not in the inventory under %s", table, promise)
			}
		}
	})
}
