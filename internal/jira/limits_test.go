package jira_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

type basicAuth struct{ email, token string }

func (b basicAuth) Authorize(_ context.Context, r *http.Request) error {
	r.SetBasicAuth(b.email, b.token)
	return nil
}

func simClient(t *testing.T, o jirasim.Options) (*jira.Client, *jirasim.Sim) {
	t.Helper()
	sim := jirasim.New(o)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	u := sim.Users()[0]
	c, err := jira.New(srv.URL, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, basicAuth{u.Email, u.APIToken})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
}

// TestLimitsCountPointsAsJiraCharges runs every kind of call Ferry makes and
// compares the points Ferry counted with those the simulator charged, an
// implementation of Atlassian's model that shares no code with Ferry's.
func TestLimitsCountPointsAsJiraCharges(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 730, Projects: 3, Users: 6, Seed: 11})
	limits := &jira.Limits{}
	c.Limits = limits.Tenant("t1")
	ctx := jira.WithSpend(context.Background(), "ds1", nil)
	jql := `created >= "2000-01-01" ORDER BY created DESC`
	ids, err := c.SearchIDs(ctx, jql, "", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BulkFetch(ctx, ids.IDs[:100], []string{"summary", "assignee"}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Search(ctx, jql, []string{"summary", "status"}, "", 100)
	if err != nil || len(p.Issues) != 100 || p.IsLast {
		t.Fatalf("search page: %d issues, last=%v, %v", len(p.Issues), p.IsLast, err)
	}
	if _, err := c.Search(ctx, jql, []string{"summary"}, p.NextPageToken, 37); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangelogsOf(ctx, ids.IDs[:20], nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApproximateCount(ctx, jql); err != nil {
		t.Fatal(err)
	}
	// The tables' readers (issue 16): worklogs, comments, projects,
	// versions, components, users, boards, sprints and their issues.
	if _, err := c.IssueWorklogs(ctx, ids.IDs[0], 0, jira.MaxWorklogPage); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IssueComments(ctx, ids.IDs[1], 0, jira.MaxCommentPage); err != nil {
		t.Fatal(err)
	}
	projects, err := c.Projects(ctx, 0, 50)
	if err != nil || len(projects.Values) == 0 {
		t.Fatalf("projects: %+v, %v", projects, err)
	}
	if _, err := c.ProjectVersions(ctx, projects.Values[0].ID, 0, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ProjectComponents(ctx, projects.Values[0].ID); err != nil {
		t.Fatal(err)
	}
	if users, err := c.UsersPage(ctx, 0, 100); err != nil || len(users) == 0 {
		t.Fatalf("users: %d, %v", len(users), err)
	}
	boards, err := c.Boards(ctx, 0, 50)
	if err != nil || len(boards.Values) == 0 {
		t.Fatalf("boards: %+v, %v", boards, err)
	}
	sprints, err := c.BoardSprints(ctx, boards.Values[0].ID, 0, 50)
	if err != nil || len(sprints.Values) == 0 {
		t.Fatalf("sprints: %+v, %v", sprints, err)
	}
	if _, err := c.SprintIssues(ctx, sprints.Values[0].ID, 0, 50); err != nil {
		t.Fatal(err)
	}
	ctx2 := jira.WithSpend(context.Background(), "app", nil)
	if _, err := c.Fields(ctx2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Myself(ctx2); err != nil {
		t.Fatal(err)
	}
	var accts []string
	for _, u := range sim.Users()[:4] {
		accts = append(accts, u.AccountID)
	}
	if _, err := c.Users(ctx2, accts); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckJQL(ctx2, "nonsense ==="); err == nil {
		t.Fatal("a bad query passed")
	}
	spent := c.Limits.SpentToday()
	total := 0
	for _, v := range spent {
		total += v
	}
	if st := sim.Stats(); int64(total) != st.Points || spent["ds1"] == 0 || spent["app"] == 0 {
		t.Errorf("Ferry counted %d points (%v), the simulator charged %d", total, spent, st.Points)
	}
}

// TestLimitsPaceCallsUnderTheBurstPolicy: many callers of one tenant, against
// a site allowing 25 requests/s per endpoint, are paced by the burst policy
// Jira reports, so the site answers no 429; and the concurrency limit grows
// from its small start while answers stay fast (at 200 ms an answer, 25
// calls a second need about five in flight).
func TestLimitsPaceCallsUnderTheBurstPolicy(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 300, Projects: 2, Users: 3, Seed: 2, Rate: 25, Latency: 200 * time.Millisecond})
	limits := &jira.Limits{Cap: 12}
	c.Limits = limits.Tenant("t1")
	start := c.Limits.Concurrency()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				if _, err := c.ApproximateCount(context.Background(), "created >= 2000-01-01"); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st := sim.Stats()
	if failed.Load() != 0 || st.Requests["POST /rest/api/3/search/approximate-count"] != 64 {
		t.Fatalf("%d calls failed; sim saw %v", failed.Load(), st.Requests)
	}
	// The first answer brings the policy; until then at most the starting
	// concurrency is in flight, within the bucket's one-second burst.
	if st.RateLimited != 0 {
		t.Errorf("the site answered %d 429s", st.RateLimited)
	}
	if got := c.Limits.Concurrency(); got <= start || got > 12 {
		t.Errorf("concurrency %d after 64 fast answers (started at %d, cap 12)", got, start)
	}
	if st.MaxConcurrent > 12 {
		t.Errorf("%d calls in flight at once, cap 12", st.MaxConcurrent)
	}
}

// TestLimitsUseJirasBurstWithout429s: Ferry spends the burst bucket Jira
// says it has (r of "jira-burst-based") at once rather than pacing it out,
// and still gets no 429, even when answers overtake one another (latency
// 80 ± 40 ms) and many callers share the tenant: the calls sent since an
// answer, and those still in flight, are taken off what it reports.
func TestLimitsUseJirasBurstWithout429s(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 300, Projects: 2, Users: 3, Seed: 2, Rate: 40,
		Latency: 80 * time.Millisecond, Jitter: 40 * time.Millisecond})
	c.Limits = (&jira.Limits{Cap: 32}).Tenant("t1")
	var wg sync.WaitGroup
	var failed atomic.Int32
	for round := range 2 {
		for g := 0; g < 24; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 6; i++ {
					if _, err := c.Search(context.Background(), "created >= 2000-01-01 ORDER BY created", []string{"created"}, "", 1); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if round == 0 {
			time.Sleep(500 * time.Millisecond) // Jira's bucket refills partly
		}
	}
	st := sim.Stats()
	if failed.Load() != 0 || st.Requests["POST /rest/api/3/search/jql"] != 288 {
		t.Fatalf("%d calls failed; sim saw %v", failed.Load(), st.Requests)
	}
	if st.RateLimited != 0 {
		t.Errorf("the site answered %d 429s", st.RateLimited)
	}
}

// quotaServer answers like Jira under an enforced points pool: each call
// costs 1 point, the pool holds q per window of w seconds, and an empty
// pool answers 429 with the quota reason until its reset.
type quotaServer struct {
	mu     sync.Mutex
	q      int
	w      time.Duration
	start  time.Time
	spent  int
	served int
	denied int
	perWin map[int64]int
}

func (s *quotaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	win := now.Truncate(s.w)
	if !win.Equal(s.start) {
		s.start, s.spent = win, 0
	}
	reset := win.Add(s.w)
	t := int(reset.Sub(now).Seconds() + 0.999)
	w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"tenant-app-quota";q=%d;w=%d`, s.q, int(s.w/time.Second)))
	if s.spent >= s.q {
		s.denied++
		w.Header().Set("RateLimit", fmt.Sprintf(`"tenant-app-quota";r=0;t=%d`, t))
		w.Header().Set("Retry-After", fmt.Sprint(max(t, 1)))
		w.Header().Set("RateLimit-Reason", "jira-quota-tenant-based")
		w.WriteHeader(429)
		return
	}
	s.spent++
	s.served++
	s.perWin[win.UnixNano()]++
	entry := fmt.Sprintf(`"tenant-app-quota";t=%d`, t)
	if (s.q-s.spent)*5 < s.q {
		entry = fmt.Sprintf(`"tenant-app-quota";r=%d;t=%d`, s.q-s.spent, t)
	}
	w.Header().Set("RateLimit", entry)
	w.Write([]byte(`{"count": 1}`))
}

// TestLimitsPaceAReservationToFitThePool: work that needs more points than
// the pool holds until its reset, but fits with the next window, is paced so
// that the pool never runs dry: the site refuses nothing, and no window
// is spent past its quota.
func TestLimitsPaceAReservationToFitThePool(t *testing.T) {
	qs := &quotaServer{q: 300, w: 2 * time.Second, perWin: map[int64]int{}}
	srv := httptest.NewServer(qs)
	defer srv.Close()
	c, _ := jira.New(srv.URL, srv.Client(), nil)
	limits := &jira.Limits{Cap: 8}
	c.Limits = limits.Tenant("t1")
	ctx := context.Background()
	// Learn the pool.
	if _, err := c.ApproximateCount(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	const need = 500 // 1 point per call: more than two windows' worth with the margin kept
	res, err := c.Limits.Reserve(need, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Done()
	rctx := jira.WithSpend(ctx, "ds", res)
	var wg sync.WaitGroup
	var calls atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for calls.Add(1) <= need {
				if _, err := c.ApproximateCount(rctx, "x"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.denied != 0 {
		t.Errorf("the pool ran dry: %d calls refused", qs.denied)
	}
	if len(qs.perWin) < 3 {
		t.Errorf("%d calls fit in %d windows of 300: not paced", qs.served, len(qs.perWin))
	}
	for w, n := range qs.perWin {
		if n > qs.q {
			t.Errorf("window %d spent %d of %d", w, n, qs.q)
		}
	}
}

// TestLimitsRefuseWorkThatCannotFit: a claim beyond what the pool can give
// within the horizon fails at once with a message naming the numbers; a
// pool exhausted for longer than MaxWait fails calls the same way instead of
// stalling them.
func TestLimitsRefuseWorkThatCannotFit(t *testing.T) {
	qs := &quotaServer{q: 50, w: time.Hour, perWin: map[int64]int{}}
	srv := httptest.NewServer(qs)
	defer srv.Close()
	c, _ := jira.New(srv.URL, srv.Client(), nil)
	limits := &jira.Limits{}
	c.Limits = limits.Tenant("t1")
	ctx := context.Background()
	if _, err := c.ApproximateCount(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Limits.Reserve(5000, 2*time.Minute)
	var qe *jira.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, jira.ErrQuota) || qe.Need != 5000 || qe.Quota != 50 {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"5000 points", "of 50 remain", "UTC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// Spend the pool: once Jira reports r=0, calls fail at once rather than
	// wait an hour, and Jira is not asked again.
	for i := 0; i < 60; i++ {
		if _, err = c.ApproximateCount(ctx, "x"); err != nil {
			break
		}
	}
	if !errors.As(err, &qe) || qe.Need != 0 || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("after the pool: %v", err)
	}
	if qs.served != 50 || qs.denied != 0 {
		t.Errorf("served %d, refused %d", qs.served, qs.denied)
	}
	// A pool drained by others while Ferry saw no r: the first refusal
	// stops every call of the tenant.
	qs2 := &quotaServer{q: 1000, w: time.Hour, perWin: map[int64]int{}}
	srv2 := httptest.NewServer(qs2)
	defer srv2.Close()
	c2, _ := jira.New(srv2.URL, srv2.Client(), nil)
	c2.Limits = limits.Tenant("t2")
	if _, err := c2.ApproximateCount(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	qs2.mu.Lock()
	qs2.spent = qs2.q // the app's other tenants spent the rest
	qs2.mu.Unlock()
	for i := 0; i < 3; i++ {
		if _, err = c2.ApproximateCount(ctx, "x"); !errors.Is(err, jira.ErrQuota) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if qs2.denied != 1 {
		t.Errorf("Jira refused %d calls; Ferry should have stopped asking after the first", qs2.denied)
	}
}
