package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/config"
	"ferry/internal/export"
	"ferry/internal/jirasim"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

const oneDay = 24 * time.Hour

// engines runs fn on SQLite and, when FERRY_TEST_POSTGRES_URL is set, on a
// fresh PostgreSQL database; dbURL is "" for SQLite.
func engines(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.PostgresURL(t)) })
}

// startStack runs `ferry demo` in-process (simulated Jira, Ferry serving
// with its job runner, the app installed through the signed lifecycle) on
// the database dbURL names ("" for SQLite in its data directory).
func startStack(t *testing.T, dbURL string, users int) (*demo, string, *LogBuffer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	logs := &LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	vars := map[string]string{"FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug", "FERRY_DATABASE_URL": dbURL}
	d, err := startDemo(ctx, env{getenv: func(k string) string { return vars[k] }, stdout: io.Discard, stderr: logs},
		demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: dir, Issues: 40, Users: users})
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(); err != nil {
			t.Errorf("demo shut down with %v", err)
		}
	})
	// Jira's lifecycle tokens carry whole seconds: callbacks of one kind
	// signed in the same second are the same token, and the second is
	// refused as a replay. The simulated site's clock moves a second ahead
	// before each lifecycle callback these tests send.
	var offset atomic.Int64
	d.sim.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	simAdvance = func(d time.Duration) { offset.Add(int64(d)) }
	return d, dir, logs
}

// simAdvance moves the simulated site's clock on (see startStack); it stays
// within the few minutes a JWT Ferry signs lives.
var simAdvance = func(time.Duration) {}

// simTick moves the simulated site's clock a second on.
func simTick() { simAdvance(1100 * time.Millisecond) }

// dbClock fakes the database clock days ahead of now; the purge, expiry and
// reporting jobs read it.
func dbClock(a *app, ahead time.Duration) {
	a.db.SetClock(func() time.Time { return time.Now().Add(ahead) })
}

// runEveryJob runs every registered job once, as `ferry jobs run` does:
// what a new user's operator would see after a while.
func runEveryJob(t *testing.T, a *app) {
	t.Helper()
	for _, j := range a.jobs.List() {
		if err := a.jobs.RunOnce(context.Background(), j.Name); err != nil {
			t.Fatalf("job %s: %v", j.Name, err)
		}
	}
}

// tenantTables reads, from the migrated schema itself, every table with a
// column whose name contains "tenant", and that column.
func tenantTables(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	q := `SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND a.attnum > 0 AND NOT a.attisdropped AND a.attname LIKE '%tenant%'`
	if db.Dialect == store.SQLite {
		q = `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.name LIKE '%tenant%'`
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		if prev, dup := out[table]; dup {
			t.Fatalf("table %s has two tenant columns (%s, %s): teach this test which one", table, prev, col)
		}
		out[table] = col
	}
	if len(out) < 4 {
		t.Fatalf("found only %d tables with a tenant column: %v", len(out), out)
	}
	return out
}

// rowsOf counts the tenant's rows in every table with a tenant column.
func rowsOf(t *testing.T, db *store.DB, tables map[string]string, tenantID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for table, col := range tables {
		var n int
		if err := db.SQL.QueryRow(`SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, tenantID).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// TestEveryTenantTableIsPurgedOrExempt: every table with a tenant column in
// the migrated schema (both engines) has a Deleter registered for the purge
// or an exemption with its reason; and nothing registered names a table
// that does not exist.
func TestEveryTenantTableIsPurgedOrExempt(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		vars := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "FERRY_DATABASE_URL": dbURL}
		cfg, _, err := config.Load("test", nil, func(k string) string { return vars[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := openApp(ctx, env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		tables := tenantTables(t, a.db)
		cov := a.purger.Coverage()
		var names []string
		for table := range tables {
			names = append(names, table)
		}
		sort.Strings(names)
		for _, table := range names {
			how, ok := cov[table]
			switch {
			case !ok:
				t.Errorf("table %s has a tenant column (%s) but no purge Deleter and no exemption: register one in internal/cli/app.go wireErasure", table, tables[table])
			case strings.HasPrefix(how, "exempt: ") && len(how) < len("exempt: ")+40:
				t.Errorf("table %s is exempt without a reason worth the name: %q", table, how)
			default:
				t.Logf("%-24s %s", table, how)
			}
		}
		for table := range cov {
			if _, ok := tables[table]; !ok {
				t.Errorf("the purge accounts for table %s, which has no tenant column in the schema", table)
			}
		}
	})
}

// TestUninstallKeepsEverythingOnDay29AndLeavesNoRowOnDay31, as a new user
// would try it: install through the signed lifecycle, use the app (feeds,
// a second user's token, the app's pages), uninstall from Jira, then run
// every registered job on day 29 and on day 31. On day 29 everything is
// there and feeds are refused; on day 31 no table holds a row of the
// tenant (but the deletion record and the keyset's tombstone), and copies
// of its sealed values taken before no longer decrypt with the key store as
// it stands.
func TestUninstallKeepsEverythingOnDay29AndLeavesNoRowOnDay31(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		d, _, _ := startStack(t, dbURL, 0)
		a, id := d.app, d.tenant
		users := d.sim.Users()
		second, _, err := a.appAPI.Tokens.Create(ctx, id, users[1].AccountID, "second user", 60, 365)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{d.info.Token, second} {
			if code, _, b := fetch(t, d.info.ODataURL+"Issues?$top=2", tok); code != 200 {
				t.Fatalf("feed before the uninstall: %d %.200s", code, b)
			}
		}
		page, err := d.sim.PageURL(a.cfg.AddonKey, "data-sources", users[2].AccountID) // a third user only opens a page
		if err != nil {
			t.Fatal(err)
		}
		if code, _, _ := fetch(t, page, ""); code != 200 {
			t.Fatalf("app page: %d", code)
		}
		type sealed struct {
			what string
			ad   string
			ct   []byte
		}
		var copies []sealed
		var ct []byte
		a.db.SQL.QueryRow(`SELECT shared_secret FROM installations WHERE tenant_id = $1`, id).Scan(&ct)
		copies = append(copies, sealed{"shared secret", "installations/shared_secret/" + id, ct})
		rows, _ := a.db.SQL.Query(`SELECT id, owner_enc FROM access_tokens WHERE tenant_id = $1`, id)
		for rows.Next() {
			var tid string
			var enc []byte
			rows.Scan(&tid, &enc)
			copies = append(copies, sealed{"token owner", "access_tokens/owner_enc/" + tid, enc})
		}
		rows.Close()
		rows, _ = a.db.SQL.Query(`SELECT pseudonym, account_enc FROM privacy_accounts WHERE tenant_id = $1`, id)
		for rows.Next() {
			var p string
			var enc []byte
			rows.Scan(&p, &enc)
			copies = append(copies, sealed{"reporting copy", "privacy_accounts/account_enc/" + id + "/" + p, enc})
		}
		rows.Close()
		if len(copies) < 5 {
			t.Fatalf("only %d sealed values to follow; the test would prove little", len(copies))
		}
		for _, c := range copies {
			if _, err := a.keys.Decrypt(ctx, id, []byte(c.ad), c.ct); err != nil {
				t.Fatalf("%s does not decrypt before the purge: %v", c.what, err)
			}
		}

		simTick()
		if err := d.sim.Uninstall(ctx, a.cfg.AddonKey); err != nil {
			t.Fatalf("uninstall: %v", err)
		}
		if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", d.info.Token); code != 403 {
			t.Fatalf("feed of an uninstalled site: %d, want 403", code)
		}
		a.requestLog.Flush(ctx)
		tables := tenantTables(t, a.db)
		before := rowsOf(t, a.db, tables, id)
		for _, table := range []string{"installations", "access_tokens", "request_log", "privacy_accounts", "tenant_keys"} {
			if before[table] == 0 {
				t.Fatalf("no %s rows of the tenant before the purge: %v", table, before)
			}
		}

		dbClock(a, 29*oneDay)
		runEveryJob(t, a)
		if after := rowsOf(t, a.db, tables, id); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("day 29 changed rows:\nbefore %v\nafter  %v", before, after)
		}
		for _, c := range copies {
			if _, err := a.keys.Decrypt(ctx, id, []byte(c.ad), c.ct); err != nil {
				t.Fatalf("day 29: %s no longer decrypts: %v", c.what, err)
			}
		}
		for _, tok := range []string{d.info.Token, second} {
			if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", tok); code != 403 {
				t.Fatalf("day 29: feed answered %d, want 403", code)
			}
		}
		a.requestLog.Flush(ctx)

		dbClock(a, 31*oneDay)
		runEveryJob(t, a)
		after := rowsOf(t, a.db, tables, id)
		for table, n := range after {
			want := 0
			if table == "tenant_keys" || table == "tenant_deletions" {
				want = 1
			}
			if n != want {
				t.Errorf("day 31: %s holds %d rows of the tenant, want %d", table, n, want)
			}
		}
		var aead, prf []byte
		a.db.SQL.QueryRow(`SELECT aead_keyset, prf_keyset FROM tenant_keys WHERE tenant_id = $1`, id).Scan(&aead, &prf)
		if aead != nil || prf != nil {
			t.Error("day 31: the tenant keyset's tombstone still holds key material")
		}
		fresh, err := keys.Open(ctx, a.db, keyOptions(a.cfg, a.gate)) // the key store as it stands, on another replica
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range copies {
			for name, rg := range map[string]*keys.Ring{"this server": a.keys, "another replica": fresh} {
				if _, err := rg.Decrypt(ctx, id, []byte(c.ad), c.ct); !errors.Is(err, keys.ErrShredded) {
					t.Errorf("day 31, %s: a copy of the %s taken before the purge → %v, want ErrShredded", name, c.what, err)
				}
			}
		}
		rec, err := a.purger.Deletion(ctx, id)
		if err != nil || rec.FinishedAt.IsZero() || rec.Cause != tenant.CauseUninstalled {
			t.Fatalf("deletion record: %+v %v", rec, err)
		}
		for cat, n := range map[string]int64{"access tokens": 2, tenant.CategoryInstallation: 1, tenant.CategoryKeyset: 1} {
			if rec.CountsBefore[cat] != n {
				t.Errorf("record counts %s before = %d, want %d", cat, rec.CountsBefore[cat], n)
			}
		}
		if rec.CountsBefore["request log entries"] < 3 || rec.CountsBefore["personal data reporting records"] < 3 {
			t.Errorf("record counts before: %v", rec.CountsBefore)
		}
		for cat, n := range rec.CountsAfter {
			if n != 0 {
				t.Errorf("record counts %s after = %d", cat, n)
			}
		}
		for _, tok := range []string{d.info.Token, second} {
			if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", tok); code != 401 {
				t.Errorf("day 31: a purged tenant's token answered %d, want 401", code)
			}
		}
	})
}

// TestReinstallOnDay10KeepsTokensAndFeedsWorking: uninstalled, then
// installed again on day 10, the tenant is the same, its tokens and feed
// URLs work, and the purge never comes.
func TestReinstallOnDay10KeepsTokensAndFeedsWorking(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 0)
	a, id := d.app, d.tenant
	feed := d.info.ODataURL + "Issues?$top=3"
	if code, _, _ := fetch(t, feed, d.info.Token); code != 200 {
		t.Fatalf("feed: %d", code)
	}
	// The demo's token lasts 30 days; this one outlives the test's day 31.
	long, _, err := a.appAPI.Tokens.Create(ctx, id, d.sim.Users()[0].AccountID, "long-lived", 90, 365)
	if err != nil {
		t.Fatal(err)
	}
	simTick()
	if err := d.sim.Uninstall(ctx, a.cfg.AddonKey); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, feed, d.info.Token); code != 403 {
		t.Fatalf("feed after uninstall: %d, want 403", code)
	}
	dbClock(a, 10*oneDay)
	simTick()
	if _, err := d.sim.Install(ctx, d.info.AppURL, jirasim.InstallValid); err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	in, err := a.tenants.ByClientKey(ctx, mustInstallation(t, d).ClientKey)
	if err != nil || in.TenantID != id || in.State != tenant.Active || !in.PurgeAfter.IsZero() {
		t.Fatalf("after the day-10 reinstall: %+v %v", in, err)
	}
	// Jira (the simulated one too) removes an app's properties when it is
	// uninstalled, and data sources are app properties in the customer's
	// Jira, never in Ferry. The admin puts the source back under its id, as
	// the demo does after its simulated Jira restarts.
	restoreDemoSource(t, d)
	rowsSeen, _ := allRows(t, feed, d.info.Token)
	if len(rowsSeen) != 3 {
		t.Fatalf("the token made before the uninstall reads %d rows through the old feed URL, want 3", len(rowsSeen))
	}
	dbClock(a, 31*oneDay)
	runEveryJob(t, a)
	if _, err := a.purger.Deletion(ctx, id); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("a revived tenant has a deletion record: %v", err)
	}
	if code, _, _ := fetch(t, feed, long); code != 200 {
		t.Fatalf("feed on day 31 after the reinstall: %d", code)
	}
}

// TestReinstallAfterThePurgeStartsClean: a new tenant id and keyset, none of
// the old tokens, the old feed token refused.
func TestReinstallAfterThePurgeStartsClean(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 0)
	a, old := d.app, d.tenant
	simTick()
	if err := d.sim.Uninstall(ctx, a.cfg.AddonKey); err != nil {
		t.Fatal(err)
	}
	dbClock(a, 31*oneDay)
	runEveryJob(t, a)
	simTick()
	if _, err := d.sim.Install(ctx, d.info.AppURL, jirasim.InstallValid); err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	in, err := a.tenants.ByClientKey(ctx, mustInstallation(t, d).ClientKey)
	if err != nil || in.TenantID == old || in.State != tenant.Active {
		t.Fatalf("reinstall after the purge: %+v %v (old tenant %s)", in, err, old)
	}
	var live, oldLive int
	a.db.SQL.QueryRow(`SELECT count(*) FROM tenant_keys WHERE tenant_id = $1 AND shredded_at IS NULL`, in.TenantID).Scan(&live)
	a.db.SQL.QueryRow(`SELECT count(*) FROM tenant_keys WHERE tenant_id = $1 AND shredded_at IS NULL`, old).Scan(&oldLive)
	if live != 1 || oldLive != 0 {
		t.Fatalf("keysets: new tenant %d live, old tenant %d live", live, oldLive)
	}
	counts, _ := a.purger.Counts(ctx, in.TenantID)
	if counts["access tokens"] != 0 || counts["request log entries"] != 0 {
		t.Fatalf("the new tenant does not start clean: %v", counts)
	}
	restoreDemoSource(t, d)
	if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", d.info.Token); code != 401 {
		t.Fatalf("the purged tenant's token: %d, want 401", code)
	}
}

func mustInstallation(t *testing.T, d *demo) jirasim.Installation {
	t.Helper()
	in, ok := d.sim.Installation(d.app.cfg.AddonKey)
	if !ok {
		t.Fatal("the app is not installed in the simulated Jira")
	}
	return in
}

// restoreDemoSource puts the demo's data source back into the simulated
// Jira under its id, as the current tenant.
func restoreDemoSource(t *testing.T, d *demo) {
	t.Helper()
	ctx := context.Background()
	in, err := d.app.tenants.ByClientKey(ctx, mustInstallation(t, d).ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	props, err := d.app.platform.Properties(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	src := demoSource(d.info.SourceID, d.sim.Users()[0].AccountID, now)
	if err := d.app.appAPI.Sources.Restore(ctx, props, in.TenantID, src); err != nil {
		t.Fatal(err)
	}
}

// demoSource is the demo's sample data source (startDemo).
func demoSource(id, by string, now time.Time) export.DataSource {
	return export.DataSource{ID: id, Name: "Demo: all issues", JQL: demoJQL, Fields: demoFields,
		Tables: []string{export.TableChangelog, export.TableIssues}, History: []export.Change{{Action: "created", By: by, At: now}}, Updated: now}
}

// TestLapsedLicenceAndLongDisableMarkTheTenantThroughTheJobs: with the
// simulated site's licence expired, the tenant.expiry job notes it, marks
// the tenant once it has been inactive longer than the period, and the
// purge follows after the grace; a site whose app stays disabled is marked
// the same way after its own period.
func TestLapsedLicenceAndLongDisableMarkTheTenantThroughTheJobs(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 0)
	a, id := d.app, d.tenant
	if err := d.sim.SetLicense(a.cfg.AddonKey, "expired"); err != nil {
		t.Fatal(err)
	}
	run := func(ahead time.Duration, job string) {
		t.Helper()
		dbClock(a, ahead)
		if err := a.jobs.RunOnce(ctx, job); err != nil {
			t.Fatalf("%s: %v", job, err)
		}
	}
	run(0, tenant.ExpiryJobName)
	in, _ := a.tenants.ByID(ctx, id)
	if in.State != tenant.Active || in.LicenseInactiveSince.IsZero() {
		t.Fatalf("day 0: %s, inactive since %v", in.State, in.LicenseInactiveSince)
	}
	run(a.cfg.PurgeLicenseInactive-oneDay, tenant.ExpiryJobName)
	if in, _ := a.tenants.ByID(ctx, id); in.State != tenant.Active {
		t.Fatalf("marked a day before the licence period ended: %+v", in)
	}
	run(a.cfg.PurgeLicenseInactive+oneDay, tenant.ExpiryJobName)
	in, _ = a.tenants.ByID(ctx, id)
	if in.State != tenant.PendingDeletion || in.DeletionCause != tenant.CauseLicenseInactive {
		t.Fatalf("after the licence period: %s %s", in.State, in.DeletionCause)
	}
	run(a.cfg.PurgeLicenseInactive+a.cfg.PurgeGrace+2*oneDay, tenant.PurgeJobName)
	if rec, err := a.purger.Deletion(ctx, id); err != nil || rec.Cause != tenant.CauseLicenseInactive || rec.FinishedAt.IsZero() {
		t.Fatalf("purge after a lapsed licence: %+v %v", rec, err)
	}

	// The site installs the app again, then disables it in Jira and leaves
	// it so.
	dbClock(a, 0)
	d.sim.SetLicense(a.cfg.AddonKey, "active")
	simTick()
	if _, err := d.sim.Install(ctx, d.info.AppURL, jirasim.InstallValid); err != nil {
		t.Fatal(err)
	}
	again, _ := a.tenants.ByClientKey(ctx, mustInstallation(t, d).ClientKey)
	simTick()
	if err := d.sim.Disable(ctx, a.cfg.AddonKey); err != nil {
		t.Fatal(err)
	}
	run(a.cfg.PurgeDisabled-oneDay, tenant.ExpiryJobName)
	if in, _ := a.tenants.ByID(ctx, again.TenantID); in.State != tenant.Disabled {
		t.Fatalf("disabled site marked early: %+v", in)
	}
	run(a.cfg.PurgeDisabled+oneDay, tenant.ExpiryJobName)
	if in, _ := a.tenants.ByID(ctx, again.TenantID); in.State != tenant.PendingDeletion || in.DeletionCause != tenant.CauseDisabled {
		t.Fatalf("disabled longer than the period: %s %s", in.State, in.DeletionCause)
	}
}
