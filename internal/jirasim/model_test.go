package jirasim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The data model's tests compare each answer with a truth reached another
// way: a page walk with the single big page, the issue field with the
// endpoint, one end of a link with the other, a sprint's issue list with
// each issue's Sprint field, the worklog stream with the per-issue lists,
// one user's view with the admin's view filtered by what that user may
// browse.

type wlJSON struct {
	ID               string          `json:"id"`
	IssueID          string          `json:"issueId"`
	Started          string          `json:"started"`
	Updated          string          `json:"updated"`
	TimeSpentSeconds int             `json:"timeSpentSeconds"`
	Comment          json.RawMessage `json:"comment"`
	Author           struct {
		AccountID string `json:"accountId"`
	} `json:"author"`
}

type cmJSON struct {
	ID      string          `json:"id"`
	Created string          `json:"created"`
	Updated string          `json:"updated"`
	Body    json.RawMessage `json:"body"`
}

func getJSON(t testing.TB, base, path, auth string, v any) int {
	t.Helper()
	r := call(t, base, "GET", path, auth, nil)
	if r.resp.StatusCode == 200 && v != nil {
		r.decode(t, v)
	}
	return r.resp.StatusCode
}

func issueWorklogs(t testing.TB, base, auth, id string, pageSize int) []wlJSON {
	t.Helper()
	var all []wlJSON
	for start := 0; ; {
		var page struct {
			StartAt, MaxResults, Total int
			Worklogs                   []wlJSON
		}
		q := "?startAt=" + strconv.Itoa(start)
		if pageSize > 0 {
			q += "&maxResults=" + strconv.Itoa(pageSize)
		}
		if code := getJSON(t, base, "/rest/api/3/issue/"+id+"/worklog"+q, auth, &page); code != 200 {
			t.Fatalf("worklogs of %s: %d", id, code)
		}
		all = append(all, page.Worklogs...)
		start += len(page.Worklogs)
		if len(page.Worklogs) == 0 || start >= page.Total {
			if start != page.Total {
				t.Fatalf("worklogs of %s: walked %d, total %d", id, start, page.Total)
			}
			return all
		}
	}
}

func issueComments(t testing.TB, base, auth, id string, pageSize int) []cmJSON {
	t.Helper()
	var all []cmJSON
	for start := 0; ; {
		var page struct {
			Total    int
			Comments []cmJSON
		}
		q := "?startAt=" + strconv.Itoa(start)
		if pageSize > 0 {
			q += "&maxResults=" + strconv.Itoa(pageSize)
		}
		if code := getJSON(t, base, "/rest/api/3/issue/"+id+"/comment"+q, auth, &page); code != 200 {
			t.Fatalf("comments of %s: %d", id, code)
		}
		all = append(all, page.Comments...)
		start += len(page.Comments)
		if len(page.Comments) == 0 || start >= page.Total {
			if start != page.Total {
				t.Fatalf("comments of %s: walked %d, total %d", id, start, page.Total)
			}
			return all
		}
	}
}

// TestModelPagingWalksEqualTheWholeList: for generated page sizes, walking
// startAt/maxResults gives exactly the one-page answer, for worklogs,
// comments, boards, sprints, sprint issues, versions and users.
func TestModelPagingWalksEqualTheWholeList(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 1500, Projects: 3, Users: 12, Seed: 5})
	admin := basicAuth(s.Users()[0])
	rnd := rand.New(rand.NewPCG(5, 1))
	var busy []int
	for i := 0; i < 1500 && len(busy) < 6; i++ {
		if s.data.worklogCount(i) > 20 || s.data.commentCount(i) > 10 {
			busy = append(busy, i)
		}
	}
	if len(busy) < 3 {
		t.Fatal("too few busy issues")
	}
	for _, i := range busy {
		id := strconv.Itoa(10001 + i)
		wantW := issueWorklogs(t, srv.URL, admin, id, 0)
		wantC := issueComments(t, srv.URL, admin, id, 0)
		if len(wantW) != s.data.worklogCount(i) || len(wantC) != s.data.commentCount(i) {
			t.Fatalf("%s: %d worklogs %d comments, generated %d and %d", id, len(wantW), len(wantC), s.data.worklogCount(i), s.data.commentCount(i))
		}
		for range 3 {
			n := 1 + rnd.IntN(7)
			if got := issueWorklogs(t, srv.URL, admin, id, n); !reflect.DeepEqual(got, wantW) {
				t.Errorf("%s: worklog walk by %d differs from the whole list", id, n)
			}
			if got := issueComments(t, srv.URL, admin, id, n); !reflect.DeepEqual(got, wantC) {
				t.Errorf("%s: comment walk by %d differs from the whole list", id, n)
			}
		}
		// Comments come oldest first; -created reverses them.
		var rev struct{ Comments []cmJSON }
		getJSON(t, srv.URL, "/rest/api/3/issue/"+id+"/comment?orderBy=-created", admin, &rev)
		back := slices.Clone(rev.Comments)
		slices.Reverse(back)
		if !reflect.DeepEqual(back, wantC) {
			t.Errorf("%s: -created is not the reverse of created", id)
		}
		for k := 1; k < len(wantC); k++ {
			if wantC[k].Created < wantC[k-1].Created {
				t.Errorf("%s: comments not in created order", id)
			}
		}
	}
	// Agile and project pages: a walk with small pages equals one big page.
	walk := func(path string, size int) []json.RawMessage {
		var all []json.RawMessage
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		for start := 0; ; {
			var page struct {
				Total  int
				IsLast bool
				Values []json.RawMessage
				Issues []json.RawMessage
			}
			if code := getJSON(t, srv.URL, path+sep+"startAt="+strconv.Itoa(start)+"&maxResults="+strconv.Itoa(size), admin, &page); code != 200 {
				t.Fatalf("%s: %d", path, code)
			}
			items := append(page.Values, page.Issues...)
			all = append(all, items...)
			start += len(items)
			if len(items) == 0 || start >= page.Total {
				if start != page.Total {
					t.Fatalf("%s by %d: walked %d of %d", path, size, start, page.Total)
				}
				return all
			}
		}
	}
	sp := busiestSprint(s, 2)
	for _, path := range []string{"/rest/agile/1.0/board", "/rest/agile/1.0/board/2/sprint", "/rest/agile/1.0/board/3/sprint?state=closed",
		"/rest/agile/1.0/sprint/" + strconv.Itoa(sp.ID) + "/issue?fields=summary", "/rest/api/3/project/" + s.ProjectKeys()[1] + "/version"} {
		whole := walk(path, 50)
		if len(whole) == 0 {
			t.Fatalf("%s: empty", path)
		}
		for range 2 {
			n := 1 + rnd.IntN(4)
			if got := walk(path, n); !reflect.DeepEqual(got, whole) {
				t.Errorf("%s: walk by %d differs from one page", path, n)
			}
		}
	}
	// users/search pages are plain arrays.
	var all, pageA, pageB []userJSON
	getJSON(t, srv.URL, "/rest/api/3/users/search?maxResults=1000", admin, &all)
	getJSON(t, srv.URL, "/rest/api/3/users/search?maxResults=5", admin, &pageA)
	getJSON(t, srv.URL, "/rest/api/3/users/search?startAt=5&maxResults=1000", admin, &pageB)
	if len(all) != 12+len(otherAccounts) || !reflect.DeepEqual(append(pageA, pageB...), all) {
		t.Errorf("users/search: %d users; pages do not join up", len(all))
	}
	emails := 0
	types := map[string]int{}
	for _, u := range all {
		if u.EmailAddress != "" {
			emails++
		}
		types[u.AccountType]++
		// Every listed account resolves through /user as the same account.
		var one userJSON
		if code := getJSON(t, srv.URL, "/rest/api/3/user?accountId="+url.QueryEscape(u.AccountID), admin, &one); code != 200 || one.AccountID != u.AccountID || one.AccountType != u.AccountType {
			t.Errorf("user %s: %d %+v", u.AccountID, code, one)
		}
	}
	if types["atlassian"] == 0 || types["app"] == 0 || types["customer"] == 0 {
		t.Errorf("account types %v: want people, an app and a customer", types)
	}
	if emails == 0 {
		t.Error("no user shows an email address: nothing would prove an export leaves it out")
	}
}

// worklogStream follows worklog/updated from since, returning ids in
// order and the number of pages.
func worklogStream(t testing.TB, base, auth string, since int64) ([]int64, []int64, int) {
	t.Helper()
	var ids, times []int64
	pages := 0
	path := "/rest/api/3/worklog/updated?since=" + strconv.FormatInt(since, 10)
	for {
		var page struct {
			Values []struct {
				WorklogID   int64 `json:"worklogId"`
				UpdatedTime int64 `json:"updatedTime"`
			} `json:"values"`
			Since, Until int64
			LastPage     bool   `json:"lastPage"`
			NextPage     string `json:"nextPage"`
		}
		if code := getJSON(t, base, path, auth, &page); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		pages++
		for _, v := range page.Values {
			ids = append(ids, v.WorklogID)
			times = append(times, v.UpdatedTime)
		}
		if len(page.Values) > 0 && (page.Since != page.Values[0].UpdatedTime || page.Until != page.Values[len(page.Values)-1].UpdatedTime) {
			t.Errorf("since/until %d/%d do not bound the page", page.Since, page.Until)
		}
		if page.LastPage {
			if page.NextPage != "" {
				t.Error("last page has a nextPage")
			}
			return ids, times, pages
		}
		if len(page.Values) < worklogUpdatedPage {
			t.Fatalf("a page of %d that is not the last", len(page.Values))
		}
		u, err := url.Parse(page.NextPage)
		if err != nil || !strings.HasPrefix(page.NextPage, base) {
			t.Fatalf("nextPage %q", page.NextPage)
		}
		path = u.RequestURI()
	}
}

// TestWorklogStreamEqualsPerIssueLists: following worklog/updated from
// generated points in time yields each worklog updated after that point
// exactly once, oldest first, as the per-issue lists say; worklog/list
// returns them as the per-issue lists do; and each user gets only the
// worklogs of issues they may browse.
func TestWorklogStreamEqualsPerIssueLists(t *testing.T) {
	const n = 1200
	s, srv := newTestSim(t, Options{Issues: n, Projects: 3, Users: 8, Seed: 9})
	users := s.Users()
	// Truth: every issue's worklogs through the per-issue endpoint, as the
	// admin, with the project each belongs to.
	admin := basicAuth(users[0])
	byID := map[int64]wlJSON{}
	project := map[int64]string{}
	for i := 0; i < n; i++ {
		id := strconv.Itoa(10001 + i)
		for _, w := range issueWorklogs(t, srv.URL, admin, id, 0) {
			wid, _ := strconv.ParseInt(w.ID, 10, 64)
			byID[wid] = w
			project[wid] = s.snapshot().key(i)[:strings.IndexByte(s.snapshot().key(i), '-')]
		}
	}
	if len(byID) <= worklogUpdatedPage {
		t.Fatalf("only %d worklogs: the stream needs several pages", len(byID))
	}
	ms := func(w wlJSON) int64 {
		tm, err := time.Parse(jiraTime, w.Updated)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	rnd := rand.New(rand.NewPCG(9, 2))
	var all []int64
	for id := range byID {
		all = append(all, ms(byID[id]))
	}
	slices.Sort(all)
	sinces := []int64{0, all[0], all[len(all)/2], all[len(all)-1]}
	for range 4 {
		sinces = append(sinces, all[rnd.IntN(len(all))]+int64(rnd.IntN(3))-1)
	}
	for ui, u := range []User{users[0], users[1], users[3]} {
		auth := basicAuth(u)
		can := map[string]bool{}
		for _, k := range u.Projects {
			can[k] = true
		}
		for _, since := range sinces {
			ids, times, pages := worklogStream(t, srv.URL, auth, since)
			want := map[int64]bool{}
			for id, w := range byID {
				if ms(w) > since && can[project[id]] {
					want[id] = true
				}
			}
			got := map[int64]bool{}
			for k, id := range ids {
				if got[id] {
					t.Errorf("user %d since %d: worklog %d twice", ui, since, id)
				}
				got[id] = true
				if k > 0 && times[k] < times[k-1] {
					t.Errorf("user %d since %d: not oldest first", ui, since)
				}
				if w, ok := byID[id]; !ok || ms(w) != times[k] {
					t.Errorf("user %d: worklog %d updatedTime %d, the issue's list says %v", ui, id, times[k], w.Updated)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("user %d since %d: stream has %d worklogs in %d pages, the per-issue lists %d", ui, since, len(got), pages, len(want))
			}
			// worklog/list, in pages of at most 1000, returns the same
			// worklogs as the per-issue lists.
			for k := 0; k < len(ids); k += maxWorklogList {
				chunk := ids[k:min(k+maxWorklogList, len(ids))]
				var listed []wlJSON
				call(t, srv.URL, "POST", "/rest/api/3/worklog/list", auth, map[string]any{"ids": chunk}).status(t, 200).decode(t, &listed)
				if len(listed) != len(chunk) {
					t.Fatalf("worklog/list: %d of %d", len(listed), len(chunk))
				}
				for x, w := range listed {
					if w.ID != strconv.FormatInt(chunk[x], 10) || !reflect.DeepEqual(w, byID[chunk[x]]) {
						t.Errorf("worklog/list item %d differs from the issue's list", chunk[x])
					}
				}
			}
		}
		// Asking for worklogs of hidden issues by id returns nothing.
		var hidden []int64
		for id := range byID {
			if !can[project[id]] {
				hidden = append(hidden, id)
			}
			if len(hidden) == 50 {
				break
			}
		}
		var listed []wlJSON
		call(t, srv.URL, "POST", "/rest/api/3/worklog/list", auth, map[string]any{"ids": append(hidden, 1, 99)}).status(t, 200).decode(t, &listed)
		if len(listed) != 0 {
			t.Errorf("user %d sees %d worklogs of issues they may not browse", ui, len(listed))
		}
	}
	call(t, srv.URL, "POST", "/rest/api/3/worklog/list", admin, map[string]any{"ids": make([]int64, maxWorklogList+1)}).status(t, 400)
	call(t, srv.URL, "GET", "/rest/api/3/worklog/updated?since=yesterday", admin, nil).status(t, 400)
}

// TestModelPermissionsTwoUsers: the restricted user (project one only) and
// a user of several projects see worklogs, comments, links, boards,
// sprints, sprint issues, versions and components exactly for the
// projects they may browse; everything else answers as not found.
func TestModelPermissionsTwoUsers(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 600, Projects: 4, Users: 8, Seed: 17})
	users := s.Users()
	c := s.snapshot()
	for _, u := range []User{users[1], users[2]} {
		auth := basicAuth(u)
		can := map[string]bool{}
		for _, k := range u.Projects {
			can[k] = true
		}
		if len(can) == 0 || len(can) == 4 {
			t.Fatalf("user %s browses %d projects; the test needs a partial view", u.DisplayName, len(can))
		}
		for i := 0; i < 600; i += 7 {
			id := strconv.Itoa(10001 + i)
			key := c.key(i)
			visible := can[key[:strings.IndexByte(key, '-')]]
			want := 404
			if visible {
				want = 200
			}
			for _, p := range []string{"/worklog", "/comment"} {
				if code := getJSON(t, srv.URL, "/rest/api/3/issue/"+id+p, auth, nil); code != want {
					t.Errorf("%s %s%s: %d, want %d", u.DisplayName, key, p, code, want)
				}
			}
			if !visible {
				continue
			}
			// Every linked issue is one this user may open.
			var is struct {
				Fields struct {
					IssueLinks []struct {
						InwardIssue, OutwardIssue *struct{ ID string }
					} `json:"issuelinks"`
				}
			}
			getJSON(t, srv.URL, "/rest/api/3/issue/"+id+"?fields=issuelinks", auth, &is)
			for _, l := range is.Fields.IssueLinks {
				other := l.InwardIssue
				if other == nil {
					other = l.OutwardIssue
				}
				if code := getJSON(t, srv.URL, "/rest/api/3/issue/"+other.ID+"?fields=summary", auth, nil); code != 200 {
					t.Errorf("%s: %s links to %s, which answers %d", u.DisplayName, key, other.ID, code)
				}
			}
		}
		// Boards: those of browsable projects only; the others' boards,
		// sprints and sprint issues are not found.
		var boards struct {
			Values []struct {
				ID       int
				Location struct{ ProjectKey string }
			}
		}
		getJSON(t, srv.URL, "/rest/agile/1.0/board", auth, &boards)
		seen := map[string]bool{}
		for _, b := range boards.Values {
			if !can[b.Location.ProjectKey] {
				t.Errorf("%s sees board %d of %s", u.DisplayName, b.ID, b.Location.ProjectKey)
			}
			seen[b.Location.ProjectKey] = true
		}
		for p, k := range s.ProjectKeys() {
			if can[k] != seen[k] {
				t.Errorf("%s: board of %s visible %v, project browsable %v", u.DisplayName, k, seen[k], can[k])
			}
			want := 404
			if can[k] {
				want = 200
			}
			sp := strconv.Itoa(busiestSprint(s, p).ID)
			for _, path := range []string{"/rest/agile/1.0/board/" + strconv.Itoa(p+1), "/rest/agile/1.0/board/" + strconv.Itoa(p+1) + "/sprint",
				"/rest/agile/1.0/sprint/" + sp, "/rest/agile/1.0/sprint/" + sp + "/issue", "/rest/agile/1.0/board/" + strconv.Itoa(p+1) + "/sprint/" + sp + "/issue",
				"/rest/api/3/project/" + k + "/versions", "/rest/api/3/project/" + k + "/version", "/rest/api/3/project/" + k + "/components"} {
				if code := getJSON(t, srv.URL, path, auth, nil); code != want {
					t.Errorf("%s %s: %d, want %d", u.DisplayName, path, code, want)
				}
			}
		}
		// A sprint of one board asked through another is not found.
		if code := getJSON(t, srv.URL, "/rest/agile/1.0/board/1/sprint/"+strconv.Itoa(sprintID(1, 3))+"/issue", basicAuth(users[0]), nil); code != 404 {
			t.Errorf("sprint of board 2 through board 1: %d", code)
		}
	}
}

// TestModelIsConsistent checks the data against itself through different
// endpoints: links from both ends, time tracking against the worklogs,
// the comment and worklog fields against their endpoints, the Sprint field
// against each sprint's issue list, components and versions against the
// project's lists; and that the same seed gives the same site.
func TestModelIsConsistent(t *testing.T) {
	const n = 700
	s, srv := newTestSim(t, Options{Issues: n, Projects: 3, Users: 8, Seed: 23})
	admin := basicAuth(s.Users()[0])
	type issueFields struct {
		ID, Key string
		Fields  struct {
			IssueLinks []struct {
				ID   string
				Type struct{ ID, Name, Inward, Outward string }
				// Set on the side the link points at.
				InwardIssue, OutwardIssue *struct{ ID, Key string }
			} `json:"issuelinks"`
			Comment struct {
				Comments []cmJSON
				Total    int
			}
			Worklog struct {
				Worklogs   []wlJSON
				Total      int
				MaxResults int
			}
			Timetracking struct {
				OriginalEstimateSeconds, RemainingEstimateSeconds, TimeSpentSeconds int
				TimeSpent                                                           string
			}
			Progress   struct{ Progress, Total, Percent int }
			Timespent  *int                        `json:"timespent"`
			Sprint     []struct{ ID, BoardID int } `json:"customfield_10020"`
			Components []struct{ ID string }
			Versions   []struct{ ID string }
			Project    struct{ Key string }
			Updated    string
		}
	}
	fields := "issuelinks,comment,worklog,timetracking,progress,timespent,customfield_10020,components,versions,project,updated"
	issues := map[string]issueFields{}
	for i := 0; i < n; i += 100 {
		var page struct{ Issues []issueFields }
		var ids []string
		for k := i; k < i+100; k++ {
			ids = append(ids, strconv.Itoa(10001+k))
		}
		call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", admin, map[string]any{"issueIdsOrKeys": ids, "fields": strings.Split(fields, ",")}).status(t, 200).decode(t, &page)
		for _, is := range page.Issues {
			issues[is.ID] = is
		}
	}
	if len(issues) != n {
		t.Fatalf("%d issues", len(issues))
	}
	links, sprintMembers := 0, 0
	inSprint := map[int]map[string]bool{}
	for id, is := range issues {
		f := is.Fields
		for _, l := range f.IssueLinks {
			links++
			other, mine := l.OutwardIssue, "inward"
			if other == nil {
				other, mine = l.InwardIssue, "outward"
			}
			back := issues[other.ID]
			found := false
			for _, bl := range back.Fields.IssueLinks {
				// The other end names this issue on the opposite side.
				ref := bl.OutwardIssue
				if mine == "inward" {
					ref = bl.InwardIssue
				}
				if bl.ID == l.ID && bl.Type == l.Type && ref != nil && ref.ID == id {
					found = true
				}
			}
			if !found {
				t.Errorf("link %s from %s to %s has no matching end on %s", l.ID, is.Key, other.Key, other.Key)
			}
			if !strings.HasPrefix(other.Key, f.Project.Key+"-") {
				t.Errorf("link %s leaves the project: %s → %s", l.ID, is.Key, other.Key)
			}
		}
		ws := issueWorklogs(t, srv.URL, admin, id, 0)
		cs := issueComments(t, srv.URL, admin, id, 0)
		spent := 0
		for _, w := range ws {
			spent += w.TimeSpentSeconds
		}
		// Logging work or commenting updates the issue in Jira: nothing
		// generated postdates the issue's updated, so a window on the
		// issue's updated finds every changed worklog and comment.
		issueUpdated, _ := time.Parse(jiraTime, f.Updated)
		for _, w := range ws {
			if u, _ := time.Parse(jiraTime, w.Updated); u.After(issueUpdated) {
				t.Errorf("%s: worklog %s updated %s after the issue (%s)", is.Key, w.ID, w.Updated, f.Updated)
			}
		}
		for _, cm := range cs {
			if u, _ := time.Parse(jiraTime, cm.Updated); u.After(issueUpdated) || cm.Updated < cm.Created {
				t.Errorf("%s: comment %s created %s updated %s, the issue %s", is.Key, cm.ID, cm.Created, cm.Updated, f.Updated)
			}
		}
		if f.Worklog.Total != len(ws) || len(f.Worklog.Worklogs) != min(len(ws), 20) || len(ws) > 0 && !reflect.DeepEqual(f.Worklog.Worklogs, ws[:len(f.Worklog.Worklogs)]) {
			t.Errorf("%s: worklog field (%d of %d) differs from the endpoint (%d)", is.Key, len(f.Worklog.Worklogs), f.Worklog.Total, len(ws))
		}
		if f.Comment.Total != len(cs) || !reflect.DeepEqual(f.Comment.Comments, cs) && len(cs) > 0 {
			t.Errorf("%s: comment field (%d) differs from the endpoint (%d)", is.Key, f.Comment.Total, len(cs))
		}
		tt := f.Timetracking
		if tt.TimeSpentSeconds != spent || spent > 0 && (f.Timespent == nil || *f.Timespent != spent) {
			t.Errorf("%s: time spent %d (field %v), worklogs sum to %d", is.Key, tt.TimeSpentSeconds, f.Timespent, spent)
		}
		if spent > 0 && tt.TimeSpent != jiraDuration(spent) {
			t.Errorf("%s: timeSpent %q for %d s", is.Key, tt.TimeSpent, spent)
		}
		if tt.OriginalEstimateSeconds > 0 && tt.RemainingEstimateSeconds != max(0, tt.OriginalEstimateSeconds-spent) {
			t.Errorf("%s: remaining %d, estimate %d, spent %d", is.Key, tt.RemainingEstimateSeconds, tt.OriginalEstimateSeconds, spent)
		}
		if p := f.Progress; p.Progress != spent || p.Total != spent+tt.RemainingEstimateSeconds || p.Total > 0 && p.Percent != spent*100/p.Total {
			t.Errorf("%s: progress %+v for spent %d remaining %d", is.Key, p, spent, tt.RemainingEstimateSeconds)
		}
		for _, sp := range f.Sprint {
			if inSprint[sp.ID] == nil {
				inSprint[sp.ID] = map[string]bool{}
			}
			inSprint[sp.ID][id] = true
			sprintMembers++
		}
		var comps []struct{ ID string }
		getJSON(t, srv.URL, "/rest/api/3/project/"+f.Project.Key+"/components", admin, &comps)
		for _, c := range f.Components {
			if !slices.Contains(comps, struct{ ID string }{c.ID}) {
				t.Errorf("%s: component %s is not one of the project's", is.Key, c.ID)
			}
		}
		var vers []struct{ ID string }
		getJSON(t, srv.URL, "/rest/api/3/project/"+f.Project.Key+"/versions", admin, &vers)
		for _, v := range f.Versions {
			if !slices.Contains(vers, struct{ ID string }{v.ID}) {
				t.Errorf("%s: affects version %s is not one of the project's", is.Key, v.ID)
			}
		}
	}
	if links == 0 || sprintMembers == 0 {
		t.Fatalf("%d links, %d sprint memberships: nothing was compared", links, sprintMembers)
	}
	// Each sprint's issue list is exactly the issues whose Sprint field
	// names it.
	for p := range s.ProjectKeys() {
		var sprints struct{ Values []struct{ ID int } }
		getJSON(t, srv.URL, "/rest/agile/1.0/board/"+strconv.Itoa(p+1)+"/sprint?maxResults=50", admin, &sprints)
		var rest struct{ Values []struct{ ID int } }
		getJSON(t, srv.URL, "/rest/agile/1.0/board/"+strconv.Itoa(p+1)+"/sprint?startAt=50", admin, &rest)
		for _, sp := range append(sprints.Values, rest.Values...) {
			got := map[string]bool{}
			for start := 0; ; start += 50 {
				var page struct {
					Total  int
					Issues []struct{ ID string }
				}
				getJSON(t, srv.URL, fmt.Sprintf("/rest/agile/1.0/sprint/%d/issue?fields=summary&startAt=%d", sp.ID, start), admin, &page)
				for _, is := range page.Issues {
					got[is.ID] = true
				}
				if start+50 >= page.Total {
					break
				}
			}
			if len(got)+len(inSprint[sp.ID]) > 0 && !reflect.DeepEqual(got, inSprint[sp.ID]) {
				t.Errorf("sprint %d lists %d issues, %d issues name it", sp.ID, len(got), len(inSprint[sp.ID]))
			}
			delete(inSprint, sp.ID)
		}
	}
	if len(inSprint) > 0 {
		t.Errorf("issues name sprints no board lists: %v", inSprint)
	}
	// Same seed, same site; another seed, another site.
	_, srv2 := newTestSim(t, Options{Issues: n, Projects: 3, Users: 8, Seed: 23})
	_, srv3 := newTestSim(t, Options{Issues: n, Projects: 3, Users: 8, Seed: 24})
	path := "/rest/api/3/issue/10042?fields=" + fields + ",customfield_10053,customfield_10054,attachment,votes,watches"
	a := call(t, srv.URL, "GET", path, admin, nil).body
	b := call(t, srv2.URL, "GET", path, admin, nil).body
	c := call(t, srv3.URL, "GET", path, basicAuth(New(Options{Issues: n, Projects: 3, Users: 8, Seed: 24}).Users()[0]), nil).body
	norm := func(b []byte, base string) string { return strings.ReplaceAll(string(b), base, "") }
	if norm(a, srv.URL) != norm(b, srv2.URL) {
		t.Error("the same seed gave another issue")
	}
	if norm(a, srv.URL) == norm(c, srv3.URL) {
		t.Error("another seed gave the same issue")
	}
}

// TestAgileIssuesCarrySoftwareFields: an issue listed in a sprint names
// that sprint in sprint (open) or closedSprints, which agree with its
// Sprint custom field; flagged follows the Flags field's Impediment.
func TestAgileIssuesCarrySoftwareFields(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 3000, Projects: 2, Users: 6, Seed: 12})
	admin := basicAuth(s.Users()[0])
	checked, flagged := 0, 0
	for _, sp := range []sprintRec{busiestSprint(s, 0), s.data.sprint(1, sprintCount-2)} {
		var page struct {
			Issues []struct {
				ID     string
				Fields struct {
					Flagged bool
					Sprint  *struct {
						ID    int
						State string
					}
					ClosedSprints []struct {
						ID    int
						State string
					}
					SprintField []struct{ ID int }       `json:"customfield_10020"`
					Flags       []struct{ Value string } `json:"customfield_10044"`
				}
			}
		}
		getJSON(t, srv.URL, "/rest/agile/1.0/sprint/"+strconv.Itoa(sp.ID)+"/issue", admin, &page)
		if len(page.Issues) == 0 {
			t.Fatalf("sprint %d (%s) has no issues", sp.ID, sp.State)
		}
		for _, is := range page.Issues {
			f := is.Fields
			named := map[int]bool{}
			for _, c := range f.ClosedSprints {
				if c.State != "closed" {
					t.Errorf("%s: closedSprints holds a %s sprint", is.ID, c.State)
				}
				named[c.ID] = true
			}
			if f.Sprint != nil {
				if f.Sprint.State == "closed" {
					t.Errorf("%s: sprint is closed", is.ID)
				}
				named[f.Sprint.ID] = true
			}
			field := map[int]bool{}
			for _, x := range f.SprintField {
				field[x.ID] = true
			}
			if !named[sp.ID] || !reflect.DeepEqual(named, field) {
				t.Errorf("%s in sprint %d: sprint/closedSprints %v, Sprint field %v", is.ID, sp.ID, named, field)
			}
			imp := false
			for _, o := range f.Flags {
				imp = imp || o.Value == "Impediment"
			}
			if f.Flagged != imp {
				t.Errorf("%s: flagged %v, Flags %v", is.ID, f.Flagged, f.Flags)
			}
			if imp {
				flagged++
			}
			checked++
		}
	}
	if checked < 10 || flagged == 0 {
		t.Fatalf("checked %d issues, %d flagged", checked, flagged)
	}
}
