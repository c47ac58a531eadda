package harness

import (
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx": the tests read PostgreSQL as any client would
	_ "modernc.org/sqlite"
)

// database is a read-only view of Ferry's database from outside the process,
// as an operator's client sees it.
type database struct {
	engine string // "sqlite" or "postgres"
	db     *sql.DB
}

func openDatabase(t testing.TB, engine, dirOrURL string) *database {
	t.Helper()
	var db *sql.DB
	var err error
	if engine == "postgres" {
		db, err = sql.Open("pgx", dirOrURL)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dirOrURL, "ferry.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &database{engine: engine, db: db}
}

// tables lists Ferry's tables (PostgreSQL's request-log partitions under
// their parent's name).
func (d *database) tables(t testing.TB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if d.engine == "postgres" {
		q = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition`
	}
	rows, err := d.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// dump renders every row of every table but those in skip, sorted, one
// line per row: two dumps are equal exactly when the data is.
func (d *database) dump(t testing.TB, skip func(table string) bool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range d.tables(t) {
		if skip != nil && skip(table) {
			continue
		}
		out[table] = d.rows(t, `SELECT * FROM `+table)
	}
	return out
}

// rows renders a query's rows as sorted lines.
func (d *database) rows(t testing.TB, q string, args ...any) []string {
	t.Helper()
	rows, err := d.db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			if bs, ok := v.([]byte); ok {
				fmt.Fprintf(&b, "%x", bs)
			} else {
				fmt.Fprint(&b, v)
			}
		}
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}

func (d *database) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := d.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// diffDumps names the first difference between two dumps, or "".
func diffDumps(before, after map[string][]string) string {
	var names []string
	for k := range before {
		names = append(names, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		a, b := before[n], after[n]
		if slices.Equal(a, b) {
			continue
		}
		for _, line := range b {
			if !slices.Contains(a, line) {
				return fmt.Sprintf("table %s: %d rows → %d; new or changed row: %.300s", n, len(a), len(b), line)
			}
		}
		for _, line := range a {
			if !slices.Contains(b, line) {
				return fmt.Sprintf("table %s: %d rows → %d; row gone or changed: %.300s", n, len(a), len(b), line)
			}
		}
		return fmt.Sprintf("table %s: %d rows → %d", n, len(a), len(b))
	}
	return ""
}

// listing names every file under dir with its mode (sizes and contents of
// the database files change with every log entry and are compared through
// the dump instead).
func listing(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		if !strings.HasPrefix(filepath.Base(p), "ferry.db") && !e.IsDir() {
			line += fmt.Sprintf(" %d", info.Size())
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
