package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/jirasim"
	"ferry/internal/privacy"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

// reportClock moves Ferry's database clock (what the reporter schedules by)
// and counts how it was made to wait.
type reportClock struct {
	ahead atomic.Int64
	mu    sync.Mutex
	waits []reportWait
}

type reportWait struct {
	d          time.Duration
	callsSoFar int // report calls the site had seen when the wait began
}

func (c *reportClock) install(a *app, sim *jirasim.Sim) {
	a.db.SetClock(func() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) })
	a.reporter.Sleep = func(_ context.Context, d time.Duration) error {
		c.mu.Lock()
		c.waits = append(c.waits, reportWait{d, len(sim.ReportCalls())})
		c.mu.Unlock()
		c.ahead.Add(int64(d))
		simAdvance(d) // the site's clock, which its rate limit runs on, moves as much
		return nil
	}
}

func (c *reportClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }

// newCalls returns the site's report calls since the last look.
type callLog struct {
	sim  *jirasim.Sim
	seen int
}

func (l *callLog) next() []jirasim.ReportCall {
	all := l.sim.ReportCalls()
	out := all[l.seen:]
	l.seen = len(all)
	return out
}

// sizes lists the batch sizes the site accepted (a 429'd call is sent again).
func sizes(calls []jirasim.ReportCall) []int {
	var out []int
	for _, c := range calls {
		if c.Status != 429 {
			out = append(out, len(c.Accounts))
		}
	}
	return out
}

// wantBatches is how accounts split into batches of at most 90, in order.
func wantBatches(n int) []int {
	var out []int
	for ; n > 0; n -= privacy.MaxBatch {
		out = append(out, min(n, privacy.MaxBatch))
	}
	return out
}

// cellsHolding scans every value of every table for s and names where it is.
func cellsHolding(t *testing.T, db *store.DB, s string) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if db.Dialect == store.Postgres {
		q = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var found []string
	for _, table := range tables {
		rs, err := db.SQL.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rs.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for i, v := range vals {
				var text string
				switch x := v.(type) {
				case string:
					text = x
				case []byte:
					text = string(x)
				}
				if strings.Contains(text, s) {
					found = append(found, table+"."+cols[i])
				}
			}
		}
		rs.Close()
	}
	return found
}

// TestPersonalDataReportingAgainstTheSimulator: 250 accounts held (each
// owns a token) are reported to the simulated site in batches of 90, 90 and
// 70; an account the site calls closed loses its tokens, its encrypted copy
// and every pseudonym link, while the rest keep working; an "updated"
// answer is recorded and the account's updatedAt moves on; nothing is sent
// again before the cycle period; a short 429 is waited out exactly, a long
// one pauses all reporting until its Retry-After has passed.
func TestPersonalDataReportingAgainstTheSimulator(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 250)
	a, id := d.app, d.tenant
	users := d.sim.Users()
	if len(users) != 250 {
		t.Fatalf("%d simulated users", len(users))
	}
	var closed, open []jirasim.User
	tokens := map[string]string{}
	for _, u := range users {
		tok, _, err := a.appAPI.Tokens.Create(ctx, id, u.AccountID, "reporting test", 90, 365)
		if err != nil {
			t.Fatal(err)
		}
		tokens[u.AccountID] = tok
		if u.Closed {
			closed = append(closed, u)
		} else {
			open = append(open, u)
		}
	}
	if len(closed) == 0 || len(open) < 3 {
		t.Fatalf("the site has %d closed and %d open accounts; the test needs both", len(closed), len(open))
	}
	// Closed users' tokens work until Atlassian says so, and their
	// pseudonyms reach the request log.
	for _, u := range closed[:min(3, len(closed))] {
		fetch(t, d.info.ODataURL+"Issues?$top=1", tokens[u.AccountID])
	}
	a.requestLog.Flush(ctx)
	maxDays := func(string) int { return 365 }
	for acct, tok := range tokens {
		if _, err := a.appAPI.Tokens.Authenticate(ctx, tok, maxDays); err != nil {
			t.Fatalf("token of %s before reporting: %v", acct, err)
		}
	}
	if n, _ := a.accounts.Held(ctx, id); n != 250 {
		t.Fatalf("%d accounts held, want 250 (every token owner; the installer is one of them)", n)
	}
	pseudonyms := map[string]string{}
	for _, u := range closed {
		p, _ := a.keys.Pseudonym(ctx, id, u.AccountID)
		pseudonyms[u.AccountID] = p
		if len(cellsHolding(t, a.db, p)) < 2 {
			t.Fatalf("closed account %s's pseudonym is in too few places to prove its erasure: %v", u.AccountID, cellsHolding(t, a.db, p))
		}
	}

	clock := &reportClock{}
	clock.install(a, d.sim)
	log := &callLog{sim: d.sim}
	log.next() // calls before this point (none expected)

	// 1. The first cycle: 250 accounts in 90, 90, 70.
	r, err := a.reporter.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := log.next()
	if fmt.Sprint(sizes(calls)) != fmt.Sprint([]int{90, 90, 70}) {
		t.Fatalf("first cycle batches %v, want [90 90 70]", sizes(calls))
	}
	sent := map[string]int{}
	for _, c := range calls {
		if c.Status != 200 && c.Status != 204 {
			if c.Status == 429 {
				continue // the site's own rate limit; the batch was sent again
			}
			t.Fatalf("the site answered %d", c.Status)
		}
		for _, acct := range c.Accounts {
			sent[acct]++
		}
	}
	for _, u := range users {
		if sent[u.AccountID] != 1 {
			t.Fatalf("%s was sent %d times in the first cycle", u.AccountID, sent[u.AccountID])
		}
	}
	if r.Reported != 250 || r.Closed != len(closed) || r.Requests != 3 || r.Throttled != len(calls)-3 {
		t.Fatalf("run result %+v; %d accounts are closed", r, len(closed))
	}
	// Closed accounts: tokens refused, copies and pseudonym links gone.
	for _, u := range closed {
		if _, err := a.appAPI.Tokens.Authenticate(ctx, tokens[u.AccountID], maxDays); err == nil {
			t.Errorf("the token of closed account %s still works", u.AccountID)
		}
		if where := cellsHolding(t, a.db, pseudonyms[u.AccountID]); len(where) > 0 {
			t.Errorf("closed account %s is still linked in %v", u.AccountID, where)
		}
	}
	if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", tokens[closed[0].AccountID]); code != 401 {
		t.Errorf("feed with a closed account's token: %d, want 401", code)
	}
	for _, u := range open {
		if _, err := a.appAPI.Tokens.Authenticate(ctx, tokens[u.AccountID], maxDays); err != nil {
			t.Fatalf("the token of open account %s stopped working: %v", u.AccountID, err)
		}
	}
	if n, _ := a.accounts.Held(ctx, id); int(n) != len(open) {
		t.Fatalf("%d accounts held after the first cycle, want %d", n, len(open))
	}
	events, _ := a.reporter.Events(ctx, id)
	if len(events) != len(closed) || events[0].Kind != privacy.StatusClosed || events[0].Erased["access tokens"] != 1 || events[0].Erased[privacy.CategoryCopies] != 1 {
		t.Fatalf("closed events %+v", events)
	}

	// 2. Within the cycle period nothing is sent.
	if r, err := a.reporter.Run(ctx); err != nil || len(log.next()) != 0 || r.Reported != 0 {
		t.Fatalf("an immediate second run sent something: %+v %v", r, err)
	}
	clock.advance(jirasim.DefaultReportCyclePeriod - time.Hour)
	if _, err := a.reporter.Run(ctx); err != nil || len(log.next()) != 0 {
		t.Fatalf("a run an hour before the cycle period sent something: %v", err)
	}

	// 3. Past it: the open accounts again, one answered "updated", after a
	// short 429 that is waited out exactly.
	clock.advance(2 * time.Hour)
	updated := open[1].AccountID
	d.sim.SetReportAnswer(updated, "updated")
	d.sim.ThrottleReports(1, 30*time.Second)
	r, err = a.reporter.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls = log.next()
	if calls[0].Status != 429 || r.Throttled != 1 {
		t.Fatalf("the scripted 429 was not seen: %+v", r)
	}
	first := clock.waits[len(clock.waits)-r.Throttled]
	if first.d != 30*time.Second || first.callsSoFar != len(d.sim.ReportCalls())-len(calls)+1 {
		t.Fatalf("waits %+v: want a wait of exactly the Retry-After, right after the 429", clock.waits)
	}
	for i, c := range calls {
		if c.Status == 429 && (i+1 >= len(calls) || fmt.Sprint(calls[i+1].Accounts) != fmt.Sprint(c.Accounts)) {
			t.Fatalf("call %d was refused with 429 and not sent again next", i)
		}
	}
	if fmt.Sprint(calls[1].Accounts) != fmt.Sprint(calls[0].Accounts) {
		t.Fatal("the batch refused with 429 was not the one sent after the wait")
	}
	if fmt.Sprint(sizes(calls[1:])) != fmt.Sprint(wantBatches(len(open))) || r.Updated != 1 || r.Closed != 0 {
		t.Fatalf("second cycle batches %v (want %v), result %+v", sizes(calls[1:]), wantBatches(len(open)), r)
	}
	if events, _ := a.reporter.Events(ctx, id); events[len(events)-1].Kind != privacy.StatusUpdated {
		t.Fatalf("the updated answer was not recorded: %+v", events[len(events)-1])
	}
	if _, err := a.appAPI.Tokens.Authenticate(ctx, tokens[updated], maxDays); err != nil {
		t.Fatalf("an updated account lost its token: %v", err)
	}
	d.sim.SetReportAnswer(updated, "")

	// 4. A long Retry-After pauses all reporting until it has passed.
	clock.advance(jirasim.DefaultReportCyclePeriod + time.Hour)
	d.sim.ThrottleReports(1, 3*time.Hour)
	r, err = a.reporter.Run(ctx)
	if calls := log.next(); err != nil || len(calls) != 1 || calls[0].Status != 429 || r.PausedUntil.IsZero() || r.Reported != 0 {
		t.Fatalf("long 429: %+v %v", r, err)
	}
	clock.advance(2 * time.Hour)
	if r, err := a.reporter.Run(ctx); err != nil || len(log.next()) != 0 || r.PausedUntil.IsZero() {
		t.Fatalf("a run during the pause called the site: %+v %v", r, err)
	}
	clock.advance(90 * time.Minute)
	r, err = a.reporter.Run(ctx)
	calls = log.next()
	if err != nil || fmt.Sprint(sizes(calls)) != fmt.Sprint(wantBatches(len(open))) {
		t.Fatalf("after the pause: batches %v, %+v %v", sizes(calls), r, err)
	}
	// The account answered "updated" is now reported with a later updatedAt
	// than the others: Ferry's data of it is as of that answer.
	asOf := map[string]string{}
	for _, c := range calls {
		for i, acct := range c.Accounts {
			asOf[acct] = c.UpdatedAt[i]
		}
	}
	var others []string
	for acct, at := range asOf {
		if acct != updated {
			others = append(others, at)
		}
	}
	sort.Strings(others)
	if asOf[updated] <= others[len(others)-1] {
		t.Fatalf("updatedAt of the updated account %s, latest of the others %s", asOf[updated], others[len(others)-1])
	}

	// 5. A shorter Cycle-Period from the site is followed.
	d.sim.SetReportCyclePeriod(2 * time.Hour)
	clock.advance(jirasim.DefaultReportCyclePeriod + time.Hour)
	if _, err := a.reporter.Run(ctx); err != nil || len(log.next()) == 0 {
		t.Fatal("a due cycle sent nothing")
	}
	clock.advance(time.Hour)
	if _, err := a.reporter.Run(ctx); err != nil || len(log.next()) != 0 {
		t.Fatal("reported again an hour into a two-hour cycle")
	}
	clock.advance(90 * time.Minute)
	if _, err := a.reporter.Run(ctx); err != nil || len(log.next()) == 0 {
		t.Fatal("not reported again after the two-hour cycle")
	}
}

// TestAccountsOfADisabledSiteAreReportedThroughAnActiveOne: Jira refuses a
// disabled app's calls, but Ferry still holds that site's accounts; they are
// reported through another site where the app is active (the API takes any
// accountId from any installation of the app), and a closed one is erased.
func TestAccountsOfADisabledSiteAreReportedThroughAnActiveOne(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 0)
	a := d.app
	other := jirasim.New(jirasim.Options{Issues: 5, Projects: 1, Users: 8, Seed: 99, AllowHTTPApp: true})
	if _, err := other.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	in, err := other.Install(ctx, d.info.AppURL, jirasim.InstallValid)
	if err != nil {
		t.Fatalf("install into a second site: %v", err)
	}
	second, err := a.tenants.ByClientKey(ctx, in.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, u := range other.Users() {
		if _, _, err := a.appAPI.Tokens.Create(ctx, second.TenantID, u.AccountID, "second site", 30, 365); err != nil {
			t.Fatal(err)
		}
		held = append(held, u.AccountID)
	}
	if err := other.Disable(ctx, a.cfg.AddonKey); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.tenants.ByID(ctx, second.TenantID); st.State != tenant.Disabled {
		t.Fatalf("second site state %s", st.State)
	}
	d.sim.ResetReportCalls()
	r, err := a.reporter.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(other.ReportCalls()); n != 0 {
		t.Fatalf("the disabled site was called %d times", n)
	}
	got := map[string]bool{}
	for _, c := range d.sim.ReportCalls() {
		for _, acct := range c.Accounts {
			got[acct] = true
		}
	}
	for _, acct := range held {
		if !got[acct] {
			t.Fatalf("account %s of the disabled site was not reported through the active one", acct)
		}
	}
	// Accounts the active site does not know are closed to it, as to Atlassian
	// they would be if closed; either way Ferry erases what it holds of them.
	if r.Closed == 0 {
		t.Fatalf("no account erased: %+v", r)
	}
}

// TestReportingAndPurgeJobsAreRegistered: `ferry jobs list` names the new
// jobs with their schedules, and `ferry jobs run` runs each on a fresh data
// directory.
func TestReportingAndPurgeJobsAreRegistered(t *testing.T) {
	vars := map[string]string{"FERRY_DATA_DIR": t.TempDir() + "/data"}
	run := func(args ...string) string {
		var out, errb strings.Builder
		if err := Run(context.Background(), append([]string{"ferry"}, args...), func(k string) string { return vars[k] }, nil, &out, &errb); err != nil {
			t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	list := run("jobs", "list")
	for _, name := range []string{"tenant.purge", "tenant.expiry", "privacy.report"} {
		if !strings.Contains(list, name) || !strings.Contains(list, "every 1h0m0s") {
			t.Errorf("jobs list lacks %s:\n%s", name, list)
		}
		if out := run("jobs", "run", name); !strings.Contains(out, "job "+name+" done") {
			t.Errorf("jobs run %s: %s", name, out)
		}
	}
}
