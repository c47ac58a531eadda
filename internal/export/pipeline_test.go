package export_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// basicAuth signs in as a simulated user, as a real API client would.
type basicAuth struct{ email, token string }

func (b basicAuth) Authorize(_ context.Context, r *http.Request) error {
	r.SetBasicAuth(b.email, b.token)
	return nil
}

func simClient(t *testing.T, opts jirasim.Options, user int) (*jira.Client, *jirasim.Sim) {
	t.Helper()
	sim := jirasim.New(opts)
	return simClientVia(t, sim, sim, user), sim
}

// simClientVia serves h (the simulator, or a handler in front of it) and
// returns a client of it as the simulator's user.
func simClientVia(t *testing.T, sim *jirasim.Sim, h http.Handler, user int) *jira.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	u := sim.Users()[user]
	c, err := jira.New(srv.URL, srv.Client(), basicAuth{u.Email, u.APIToken})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allKeys pages through the same JQL sequentially, the slow obvious way.
func allKeys(t *testing.T, c *jira.Client, jql string) []string {
	var ids []string
	token := ""
	for {
		p, err := c.SearchIDs(context.Background(), jql, token, 37)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.IDs...)
		if p.IsLast {
			return ids
		}
		token = p.NextPageToken
	}
}

// inProjects is a JQL restriction to every project of the simulator.
func inProjects(sim *jirasim.Sim) string {
	return "project in (" + strings.Join(sim.ProjectKeys(), ", ") + ")"
}

func TestFetcherEmitsEveryIssueInJQLOrder(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 1234, Projects: 3, Users: 5, Seed: 7}, 0)
	jql := inProjects(sim) + " ORDER BY created DESC"
	want := allKeys(t, c, jql)
	if len(want) == 0 {
		t.Fatal("simulator returned no issues; check project keys")
	}
	f := &export.Fetcher{Client: c, Workers: 4, IDPageSize: 250}
	var got []string
	end, err := f.Stream(context.Background(), jql, []string{"summary"}, export.Cursor{}, -1, func(is jira.Issue) error {
		got = append(got, is.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !end.Done || len(got) != len(want) {
		t.Fatalf("got %d issues (done=%v), want %d", len(got), end.Done, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("issue %d = %s, want %s (order broken)", i, got[i], want[i])
		}
	}
}

func TestFetcherResumesFromCursorWithoutGapsOrRepeats(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 900, Projects: 2, Users: 3, Seed: 3}, 0)
	jql := inProjects(sim) + " ORDER BY key ASC"
	want := allKeys(t, c, jql)
	f := &export.Fetcher{Client: c, Workers: 3, IDPageSize: 200}
	var got []string
	cur := export.Cursor{}
	for pages := 0; !cur.Done; pages++ {
		if pages > 100 {
			t.Fatal("no progress")
		}
		var err error
		cur, err = f.Stream(context.Background(), jql, []string{"summary"}, cur, 130, func(is jira.Issue) error {
			got = append(got, is.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d differs", i)
		}
	}
	skipped, err := f.Skip(context.Background(), jql, export.Cursor{}, 450)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	f.Stream(context.Background(), jql, nil, skipped, 1, func(is jira.Issue) error { first = is.ID; return nil })
	if first != want[450] {
		t.Fatalf("after Skip(450) first = %s, want %s", first, want[450])
	}
	n, err := f.CountIDs(context.Background(), jql)
	if err != nil || n != len(want) {
		t.Fatalf("CountIDs = %d, %v; want %d", n, err, len(want))
	}
}

func TestFetcherStopsUpstreamWorkWhenTheClientGoesAway(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 5000, Projects: 1, Users: 2, Seed: 1}, 0)
	f := &export.Fetcher{Client: c, Workers: 2}
	gone := errors.New("client disconnected")
	n := 0
	_, err := f.Stream(context.Background(), inProjects(sim)+" ORDER BY key", []string{"summary"}, export.Cursor{}, -1, func(jira.Issue) error {
		n++
		if n == 150 {
			return gone
		}
		return nil
	})
	if !errors.Is(err, gone) {
		t.Fatalf("err = %v", err)
	}
	// At most the read-ahead window of bulkfetch calls was made: far fewer
	// than the 50 a full export would need.
	if calls := sim.Stats().Requests["POST /rest/api/3/issue/bulkfetch"]; calls > 2+2*2+2 {
		t.Fatalf("%d bulkfetch calls after the client left", calls)
	}
}

func TestFetcherSeesOnlyWhatTheUserMayBrowse(t *testing.T) {
	opts := jirasim.Options{Issues: 600, Projects: 3, Users: 6, Seed: 11}
	sim := jirasim.New(opts)
	var limited int = -1
	for i, u := range sim.Users() {
		if !u.Admin && len(u.Projects) == 1 {
			limited = i
			break
		}
	}
	if limited < 0 {
		t.Fatal("simulator has no single-project user")
	}
	admin, _ := simClient(t, opts, 0)
	user, s2 := simClient(t, opts, limited)
	allowed := s2.Users()[limited].Projects[0]
	f := &export.Fetcher{Client: user}
	_, err := f.Stream(context.Background(), `created >= "2000-01-01" ORDER BY key`, []string{"project"}, export.Cursor{}, -1, func(is jira.Issue) error {
		if got := string(is.Fields["project"]); !contains(got, `"key":"`+allowed+`"`) {
			t.Fatalf("user saw issue %s of project %s", is.Key, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	na, _ := (&export.Fetcher{Client: admin}).CountIDs(context.Background(), `created >= "2000-01-01"`)
	nu, _ := f.CountIDs(context.Background(), `created >= "2000-01-01"`)
	if nu == 0 || nu >= na {
		t.Fatalf("limited user counts %d issues, admin %d", nu, na)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
