package backup

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ferry/internal/keys"
	"ferry/internal/reqinfo"
	"ferry/internal/reqlog"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

// fixture is a migrated database with a key ring and a backup service
// writing to a directory target.
type fixture struct {
	db      *store.DB
	url     string // PostgreSQL only
	kek     *keys.LocalKEK
	ring    *keys.Ring
	tenants *tenant.Store
	target  *DirTarget
	dir     string
	svc     *Service
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{db: db, dir: t.TempDir()}
	var err error
	f.kek, err = keys.OpenLocalKEK(filepath.Join(f.dir, "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.ring = keys.NewRing(db, f.kek)
	f.tenants = tenant.NewStore(db, f.ring)
	f.target, err = NewDirTarget(filepath.Join(f.dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialect == store.Postgres {
		f.url = db.Pool.Config().ConnString()
	}
	f.svc = f.service(t, f.target, nil)
	return f
}

func (f *fixture) service(t testing.TB, target Target, mut func(*Options)) *Service {
	t.Helper()
	o := Options{DB: f.db, DatabaseURL: f.url, KEK: f.ring.KEK(), Keys: keys.Options{KeyFile: filepath.Join(f.dir, "kek.json")},
		Target: target, Region: "us-west-2",
		WorkDir: filepath.Join(f.dir, "work"), Every: 24 * time.Hour, Version: "test"}
	if mut != nil {
		mut(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// install creates a tenant through the real installations store (its keys,
// its encrypted shared secret) and returns its id.
func (f *fixture) install(t testing.TB, i int, secret string) string {
	t.Helper()
	inst, _, err := f.tenants.Install(context.Background(), tenant.Install{
		AddonKey: "ferry-bi-connector", ProductType: "jira", ClientKey: fmt.Sprintf("client-%d-%d", i, rand.Int()),
		BaseURL: fmt.Sprintf("https://site%d.atlassian.net", i), SharedSecret: []byte(secret),
		InstallerAccountID: fmt.Sprintf("5b10a2844c20165700ede%03d", i)})
	if err != nil {
		t.Fatal(err)
	}
	return inst.TenantID
}

// logRequests sends n requests through the real request-log middleware, so
// request_log rows and day keys exist.
func (f *fixture) logRequests(t testing.TB, n int) {
	t.Helper()
	l := reqlog.New(reqlog.NewStore(f.db, f.ring), reqlog.Options{})
	h := l.Handler(func(*http.Request) string { return "GET /app-api/x" }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	}))
	for i := range n {
		req := httptest.NewRequest("GET", fmt.Sprintf("/app-api/x?i=%d", i), nil)
		ctx, _ := reqinfo.With(req.Context())
		h.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// edgeTables adds tables beyond Ferry's own, filled with generated values of
// every kind the engine stores, so the round trip is tested on more than the
// shapes today's schema happens to have.
func edgeTables(t testing.TB, db *store.DB, rnd *rand.Rand, rows int) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.SQL.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if db.Dialect == store.SQLite {
		exec(`CREATE TABLE edge_values (id INTEGER PRIMARY KEY AUTOINCREMENT, a, b TEXT, c BLOB, d REAL, e TIMESTAMP,
			f INTEGER NOT NULL DEFAULT 7 CHECK (f >= 0), g INTEGER GENERATED ALWAYS AS (f * 2) VIRTUAL)`)
		exec(`CREATE TABLE edge_norowid (k TEXT PRIMARY KEY, v BLOB, w ANY) WITHOUT ROWID`)
		exec(`CREATE TABLE "edge ""quoted"" name" (name TEXT, n INTEGER)`)
		exec(`CREATE INDEX edge_values_b ON edge_values (b)`)
		exec(`CREATE UNIQUE INDEX edge_norowid_v ON edge_norowid (v)`)
		exec(`CREATE VIEW edge_view AS SELECT id, b FROM edge_values`)
		exec(`CREATE TRIGGER edge_trg AFTER INSERT ON "edge ""quoted"" name" BEGIN
			UPDATE "edge ""quoted"" name" SET n = n + 1000 WHERE rowid = NEW.rowid; END`)
		for i := range rows {
			exec(`INSERT INTO edge_values (a, b, c, d, e, f) VALUES ($1, $2, $3, $4, $5, $6)`,
				sqliteValue(rnd), sqliteValue(rnd), sqliteValue(rnd), sqliteValue(rnd), time.Unix(rnd.Int64N(4e9), rnd.Int64N(1e9)).UTC(), rnd.IntN(1000))
			exec(`INSERT INTO edge_norowid (k, v, w) VALUES ($1, $2, $3)`, fmt.Sprintf("k%05d-%s", i, randText(rnd, 3)), []byte(fmt.Sprintf("v%d", i)), sqliteValue(rnd))
			exec(`INSERT INTO "edge ""quoted"" name" (name, n) VALUES ($1, $2)`, randText(rnd, 8), i)
		}
		// Gaps in rowids and an AUTOINCREMENT counter beyond the largest id.
		exec(`DELETE FROM edge_values WHERE id % 3 = 0 OR id = (SELECT MAX(id) FROM edge_values)`)
		exec(`DELETE FROM "edge ""quoted"" name" WHERE n % 4 = 1`)
		return
	}
	exec(`CREATE TABLE edge_values (id BIGSERIAL PRIMARY KEY, a TEXT, b BYTEA, c DOUBLE PRECISION, d NUMERIC(30,10),
		e TIMESTAMPTZ, f JSONB, g INTEGER[], h BOOLEAN, i DATE, j INTERVAL, k UUID)`)
	exec(`CREATE TABLE edge_parts (day DATE NOT NULL, v TEXT) PARTITION BY RANGE (day)`)
	exec(`CREATE TABLE edge_parts_2025 PARTITION OF edge_parts FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`)
	exec(`CREATE TABLE edge_parts_2026 PARTITION OF edge_parts FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	exec(`CREATE INDEX edge_values_a ON edge_values (a)`)
	for i := range rows {
		c := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, -1e-300, rnd.NormFloat64() * 1e12}[rnd.IntN(6)]
		exec(`INSERT INTO edge_values (a, b, c, d, e, f, g, h, i, j, k) VALUES ($1, $2, $3, $4::numeric, $5, $6::jsonb, $7, $8, $9, $10::interval, gen_random_uuid())`,
			nullable(rnd, strings.ReplaceAll(randText(rnd, 12), "\x00", "")), nullable(rnd, randBytes(rnd)), c,
			fmt.Sprintf("%d.%010d", rnd.Int64N(1e18), rnd.Int64N(1e10)), time.Unix(rnd.Int64N(4e9), rnd.Int64N(1e9)*1000%1e9).UTC(),
			fmt.Sprintf(`{"n": %d, "s": %q}`, i, strings.ReplaceAll(randText(rnd, 5), "\x00", "")), []int32{int32(i), rnd.Int32()}, rnd.IntN(2) == 0,
			time.Date(2000+rnd.IntN(50), time.Month(1+rnd.IntN(12)), 1+rnd.IntN(28), 0, 0, 0, 0, time.UTC), fmt.Sprintf("%d seconds", rnd.IntN(1e6)))
		exec(`INSERT INTO edge_parts (day, v) VALUES ($1, $2)`, time.Date(2025+rnd.IntN(2), 1+time.Month(rnd.IntN(12)), 1+rnd.IntN(28), 0, 0, 0, 0, time.UTC),
			strings.ReplaceAll(randText(rnd, 6), "\x00", ""))
	}
	exec(`DELETE FROM edge_values WHERE id % 3 = 0`)
}

func nullable(rnd *rand.Rand, v any) any {
	if rnd.IntN(8) == 0 {
		return nil
	}
	return v
}

// sqliteValue is a value of a random storage class, edge cases included.
func sqliteValue(rnd *rand.Rand) any {
	switch rnd.IntN(12) {
	case 0:
		return nil
	case 1:
		return []int64{math.MinInt64, math.MaxInt64, 0, -1}[rnd.IntN(4)]
	case 2:
		return rnd.Int64()
	case 3:
		return []float64{math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64, 1.0, 0.1}[rnd.IntN(5)]
	case 4:
		return rnd.NormFloat64() * math.Pow(10, float64(rnd.IntN(40)-20))
	case 5:
		return ""
	case 6:
		return []byte{}
	case 7:
		return randBytes(rnd)
	case 8:
		return "2026-01-31 12:00:00.123456789+00:00" // looks like a time, must stay text
	default:
		return randText(rnd, 1+rnd.IntN(40))
	}
}

func randText(rnd *rand.Rand, n int) string {
	alphabet := []rune("aZ09 _-'\";\x00\n\tÄ€𝄞\u200b")
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[rnd.IntN(len(alphabet))])
	}
	return b.String()
}

func randBytes(rnd *rand.Rand) []byte {
	b := make([]byte, rnd.IntN(300))
	for i := range b {
		b[i] = byte(rnd.UintN(256))
	}
	return b
}

// populate fills a database the way Ferry and the edge cases do.
func (f *fixture) populate(t testing.TB, rnd *rand.Rand) []string {
	t.Helper()
	var ids []string
	for i := range 5 {
		ids = append(ids, f.install(t, i, fmt.Sprintf("shared-secret-%d-%d", i, rnd.Int())))
	}
	f.logRequests(t, 40)
	edgeTables(t, f.db, rnd, 60)
	return ids
}

func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// assertSameSQLite compares every table of two SQLite databases value for
// value, storage class included, through SQLite itself: each table's rows
// (with rowid where it has one) EXCEPT the other's must be empty both ways,
// and the schemas must be the same statements.
func assertSameSQLite(t testing.TB, src *sql.DB, restored string) {
	t.Helper()
	ctx := context.Background()
	conn, err := src.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE $1 AS r`, restored); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `DETACH DATABASE r`)
	schema := func(db string) []string {
		rows, err := conn.QueryContext(ctx, `SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM `+db+`.sqlite_master WHERE name NOT LIKE 'sqlite_stat%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	if a, b := schema("main"), schema("r"); !slices.Equal(a, b) {
		t.Fatalf("schemas differ:\nsource   %q\nrestored %q", a, b)
	}
	rows, err := conn.QueryContext(ctx, `SELECT name, (SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = m.name)
		FROM main.sqlite_master m WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%'`)
	if err != nil {
		t.Fatal(err)
	}
	type tbl struct {
		name string
		wr   bool
	}
	var tables []tbl
	for rows.Next() {
		var x tbl
		rows.Scan(&x.name, &x.wr)
		tables = append(tables, x)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("only %d tables compared", len(tables))
	}
	for _, x := range tables {
		if x.name == "backup_runs" {
			continue // the run's own row moves on after the snapshot; see assertRunRowAtSnapshot
		}
		cols := []string{}
		if !x.wr {
			cols = append(cols, "rowid")
		}
		crow, err := conn.QueryContext(ctx, `SELECT name FROM pragma_table_xinfo($1) WHERE hidden NOT IN (2, 3)`, x.name)
		if err != nil {
			t.Fatal(err)
		}
		for crow.Next() {
			var c string
			crow.Scan(&c)
			cols = append(cols, "typeof("+quoteIdent(c)+")", quoteIdent(c))
		}
		crow.Close()
		sel := "SELECT " + strings.Join(cols, ", ") + " FROM "
		var nsrc, nres, diff int64
		conn.QueryRowContext(ctx, `SELECT count(*) FROM main.`+quoteIdent(x.name)).Scan(&nsrc)
		conn.QueryRowContext(ctx, `SELECT count(*) FROM r.`+quoteIdent(x.name)).Scan(&nres)
		for _, q := range []string{sel + "main." + quoteIdent(x.name) + " EXCEPT " + sel + "r." + quoteIdent(x.name),
			sel + "r." + quoteIdent(x.name) + " EXCEPT " + sel + "main." + quoteIdent(x.name)} {
			var n int64
			if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM (`+q+`)`).Scan(&n); err != nil {
				t.Fatalf("%s: %v", x.name, err)
			}
			diff += n
		}
		if nsrc != nres || diff != 0 {
			t.Errorf("table %s: %d rows in source, %d restored, %d differing", x.name, nsrc, nres, diff)
		}
	}
}

// pgAdmin connects to the test server's admin database.
func pgAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), os.Getenv(storetest.EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// emptyPGDatabase creates an empty database and returns its URL.
func emptyPGDatabase(t testing.TB) string {
	t.Helper()
	admin := pgAdmin(t)
	name := fmt.Sprintf("ferry_restore_%d", rand.Int64())
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), os.Getenv(storetest.EnvPostgres))
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, _ := url.Parse(os.Getenv(storetest.EnvPostgres))
	u.Path = "/" + name
	return u.String()
}

// assertSamePG compares every table of two PostgreSQL databases through
// PostgreSQL's own text form of each row, and every sequence's position.
func assertSamePG(t testing.TB, srcURL, restoredURL string) {
	t.Helper()
	ctx := context.Background()
	digest := func(u string) map[string]string {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		tables, err := pgTables(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, tb := range tables {
			if tb.name == "backup_runs" {
				continue // the run's own row moves on after the snapshot; see assertRunRowAtSnapshot
			}
			var n int64
			var h *string
			if err := c.QueryRow(ctx, `SELECT count(*), md5(string_agg(t::text, E'\n' ORDER BY t::text)) FROM ONLY `+tb.sql()+` t`).Scan(&n, &h); err != nil {
				t.Fatal(err)
			}
			d := fmt.Sprintf("%d rows", n)
			if h != nil {
				d += " " + *h
			}
			out["table "+tb.qualified()] = d
		}
		rows, err := c.Query(ctx, `SELECT schemaname || '.' || sequencename, COALESCE(last_value, 0) FROM pg_sequences`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var v int64
			rows.Scan(&name, &v)
			out["sequence "+name] = fmt.Sprint(v)
		}
		return out
	}
	a, b := digest(srcURL), digest(restoredURL)
	if len(a) < 10 {
		t.Fatalf("only %d relations compared", len(a))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: source %s, restored %s", k, v, b[k])
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: only in the restored database", k)
		}
	}
}
