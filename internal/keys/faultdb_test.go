package keys_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"ferry/internal/store"
)

// errCutShort is what a scan that stops early reports (a dropped connection,
// a cancelled query): rows.Next returns false and only rows.Err says why.
var errCutShort = errors.New("connection lost mid-scan")

// cutShortDB opens db's SQLite file a second time through a driver whose
// result sets stop with errCutShort after `after` rows whenever the query
// contains match. Everything else passes through to the real driver.
func cutShortDB(t *testing.T, db *store.DB, match string, after int) (*store.DB, *cutConnector) {
	t.Helper()
	real, err := sql.Open("sqlite", store.SQLiteDSN(db.Path))
	if err != nil {
		t.Fatal(err)
	}
	drv := real.Driver()
	real.Close()
	c := &cutConnector{drv: drv, dsn: store.SQLiteDSN(db.Path), match: match, after: after}
	sqldb := sql.OpenDB(c)
	sqldb.SetMaxOpenConns(1)
	t.Cleanup(func() { sqldb.Close() })
	return &store.DB{SQL: sqldb, Dialect: store.SQLite, Path: db.Path}, c
}

type cutConnector struct {
	drv   driver.Driver
	dsn   string
	match string
	after int
	mu    sync.Mutex
	cuts  int
}

func (c *cutConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}
func (c *cutConnector) Driver() driver.Driver { return c.drv }

type cutConn struct {
	driver.Conn
	c *cutConnector
}

func (cc *cutConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return cc.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (cc *cutConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return cc.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (cc *cutConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := cc.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil || !strings.Contains(query, cc.c.match) {
		return rows, err
	}
	return &cutRows{Rows: rows, c: cc.c, left: cc.c.after}, nil
}

type cutRows struct {
	driver.Rows
	c    *cutConnector
	left int
}

func (r *cutRows) Next(dest []driver.Value) error {
	if r.left == 0 {
		if err := r.Rows.Next(dest); err == io.EOF {
			return io.EOF // nothing was left to cut
		}
		r.c.mu.Lock()
		r.c.cuts++
		r.c.mu.Unlock()
		return errCutShort
	}
	r.left--
	return r.Rows.Next(dest)
}

func (c *cutConnector) cutCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts
}
