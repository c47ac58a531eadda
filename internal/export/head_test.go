package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// updatedMinutes lists every issue's updated minute (since the epoch),
// sorted: the truth windows are picked from.
func updatedMinutes(t *testing.T, c *jira.Client) []int64 {
	t.Helper()
	var out []int64
	token := ""
	for {
		p, err := c.Search(context.Background(), `created >= "2000-01-01" ORDER BY updated ASC`, []string{"updated"}, token, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range p.Issues {
			var s string
			if err := json.Unmarshal(is.Fields["updated"], &s); err != nil {
				t.Fatalf("updated of %s: %v", is.Key, err)
			}
			tm, err := export.ParseJiraTime(s)
			if err != nil {
				t.Fatalf("updated of %s: %v", is.Key, err)
			}
			out = append(out, tm.Unix()/60)
		}
		if p.IsLast || p.NextPageToken == "" {
			break
		}
		token = p.NextPageToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestAWalkOfChangesCostsWhatOneChainCosts: a walk of the issues updated in
// a window (an incremental refresh) of at most headPages pages is read as
// one chain with nothing spent before it: the simulator counts exactly the
// search/jql calls and points one sequential loop pays for the same rows,
// and no approximate-count. A larger window still gives one chain's rows,
// and is cut into slices after its head (some approximate-count calls, far
// fewer search round trips in a row). Windows are generated at every size
// around the page and head boundaries, by created and updated either way,
// read whole and in OData pages resumed from their cursors.
func TestAWalkOfChangesCostsWhatOneChainCosts(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 12_000, Projects: 3, Users: 3, Seed: 21}, 0)
	zone := userZone(t, sim, 0)
	mins := updatedMinutes(t, c)
	rnd := rand.New(rand.NewPCG(21, 4))
	sizes := []int{0, 1, 99, 100, 101, 250, 999, 1000, 1001, 1499, 1500, 1501, 2600}
	for range 6 {
		sizes = append(sizes, rnd.IntN(1700))
	}
	orders := []string{"created DESC", "created ASC", "updated ASC", "updated DESC"}
	for i, size := range sizes {
		// A window of whole minutes [lo, hi) holding about size issues (a
		// minute holds several on this site, so a little more at times).
		start := rnd.IntN(len(mins) - size)
		lo := mins[start]
		if size == 0 {
			for slices.Contains(mins, lo) {
				lo++ // an empty window: a minute nothing was updated in
			}
		}
		hi := lo + 1
		if size > 0 {
			hi = mins[start+size-1] + 1
		}
		at := func(m int64) string { return time.Unix(m*60, 0).In(zone).Format("2006-01-02 15:04") }
		where := fmt.Sprintf(`updated >= "%s" AND updated < "%s"`, at(lo), at(hi))
		order := orders[i%len(orders)]
		want := oneChain(t, c, where+" ORDER BY "+order)
		// What one sequential loop pays: a call per page of 100 (one for no
		// rows), a point per call and per issue.
		loopCalls := max(1, (len(want)+99)/100)
		loopPoints := int64(loopCalls + len(want))
		for _, rowCap := range []int{-1, 5000, 333} {
			f := &export.Fetcher{Client: c}
			w := export.Walk{Where: where, Order: order, Fields: []string{"key"}, Cols: keyColumns(t, c), Zone: zone, Changes: true}
			before := sim.Stats()
			got, _, count := pagedWalk(t, f, w, rowCap)
			after := sim.Stats()
			if !slices.Equal(got, want) {
				t.Fatalf("%s ORDER BY %s in pages of %d: %d rows differ from one chain's %d (first difference at %d)", where, order, rowCap, len(got), len(want), firstDiff(got, want))
			}
			if count != -1 {
				t.Errorf("%s: the walk was counted (%d) though nobody asked", where, count)
			}
			searches := after.Requests["POST /rest/api/3/search/jql"] - before.Requests["POST /rest/api/3/search/jql"]
			counts := after.Requests["POST /rest/api/3/search/approximate-count"] - before.Requests["POST /rest/api/3/search/approximate-count"]
			points := after.Points - before.Points
			if len(want) <= 1500 && rowCap != 333 {
				if searches != int64(loopCalls) || counts != 0 || points != loopPoints {
					t.Errorf("%d changed issues by %s, pages of %d: %d search calls, %d counts, %d points; one loop: %d calls, 0 counts, %d points",
						len(want), order, rowCap, searches, counts, points, loopCalls, loopPoints)
				}
			}
			if len(want) > 1600 && rowCap == -1 && counts == 0 {
				t.Errorf("%d changed issues by %s: read as one chain of %d pages, never cut into slices", len(want), order, searches)
			}
		}
	}
}

// TestAWalkOfChangesHandsOverOnADenseSite: on a site that makes an issue
// about every 45 seconds, the minute a head hands over at often holds the
// last rows of its page and the first of the next: each is written once, by
// the head or by the slices. Windows, directions, head lengths and page
// sizes are generated; the test counts the hand-overs inside such a minute
// and fails if too few were tried.
func TestAWalkOfChangesHandsOverOnADenseSite(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 1_500_000, Projects: 3, Users: 3, Seed: 5}, 0)
	zone := userZone(t, sim, 0)
	rnd := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2023, 3, 1, 0, 0, 0, 0, zone)
	split := 0
	for range 100 {
		lo := base.Add(time.Duration(rnd.IntN(20*24*60)) * time.Minute)
		hi := lo.Add(time.Duration(6*60+rnd.IntN(18*60)) * time.Minute)
		where := fmt.Sprintf(`created >= "%s" AND created < "%s"`, lo.Format("2006-01-02 15:04"), hi.Format("2006-01-02 15:04"))
		order := []string{"created ASC", "created DESC"}[rnd.IntN(2)]
		head := 1 + rnd.IntN(3)
		rowCap := []int{-1, -1, 150, 2000}[rnd.IntN(4)]
		want, mins := chainMinutes(t, c, where+" ORDER BY "+order)
		if n := head * 100; rowCap != 150 && len(mins) > n && mins[n-1] == mins[n] {
			split++ // the hand-over minute goes on past the head's last page
		}
		f := &export.Fetcher{Client: c, HeadPages: head, LeafRows: 300}
		w := export.Walk{Where: where, Order: order, Fields: []string{"key"}, Cols: keyColumns(t, c), Zone: zone, Changes: true}
		got, _, _ := pagedWalk(t, f, w, rowCap)
		if !slices.Equal(got, want) {
			t.Fatalf("%s ORDER BY %s, head of %d pages, pages of %d: %d rows differ from one chain's %d (first difference at %d)",
				where, order, head, rowCap, len(got), len(want), firstDiff(got, want))
		}
	}
	if split < 5 {
		t.Fatalf("only %d hand-overs fell inside a minute: the test no longer tries that case", split)
	}
}

// chainMinutes reads jql on one chain: keys and created minutes, in order.
func chainMinutes(t *testing.T, c *jira.Client, jql string) (keys []string, mins []int64) {
	t.Helper()
	token := ""
	for {
		p, err := c.Search(context.Background(), jql, []string{"key", "created"}, token, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range p.Issues {
			var s string
			if err := json.Unmarshal(is.Fields["created"], &s); err != nil {
				t.Fatal(err)
			}
			tm, err := export.ParseJiraTime(s)
			if err != nil {
				t.Fatal(err)
			}
			keys, mins = append(keys, is.Key), append(mins, tm.Unix()/60)
		}
		if p.IsLast || p.NextPageToken == "" {
			return keys, mins
		}
		token = p.NextPageToken
	}
}

// TestAWalkOfChangesDoesNotTrustACountBehindItsPage: Jira's count is
// approximate; a count of the rest that says fewer issues than the head's
// last page showed beyond the hand-over minute (here: always 0) must not end
// the walk early — the rest is then read as one chain.
func TestAWalkOfChangesDoesNotTrustACountBehindItsPage(t *testing.T) {
	sim := jirasim.New(jirasim.Options{Issues: 1_500_000, Projects: 3, Users: 3, Seed: 5})
	c := simClientVia(t, sim, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/search/approximate-count") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"count":0}`))
			return
		}
		sim.ServeHTTP(w, r)
	}), 0)
	const where = `created >= "2023-03-01" AND created < "2023-03-01 08:00"`
	for _, order := range []string{"created ASC", "created DESC"} {
		want := oneChain(t, c, where+" ORDER BY "+order)
		if len(want) < 300 {
			t.Fatalf("%d issues: too few for a head of one page and a rest", len(want))
		}
		f := &export.Fetcher{Client: c, HeadPages: 1}
		w := export.Walk{Where: where, Order: order, Fields: []string{"key"}, Cols: keyColumns(t, c), Zone: userZone(t, sim, 0), Changes: true}
		got, _, _ := pagedWalk(t, f, w, -1)
		if !slices.Equal(got, want) {
			t.Fatalf("%s with every count 0: %d rows, one chain %d (first difference at %d)", order, len(got), len(want), firstDiff(got, want))
		}
	}
}
