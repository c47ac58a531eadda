package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// keyColumns are the Key and Id columns, read from any issue.
func keyColumns(t *testing.T, c *jira.Client) []export.Column {
	t.Helper()
	fields, err := c.Fields(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return export.IssueColumns(fields, []string{"created"})
}

// userZone is the zone JQL reads the user's dates in (the simulator's
// data, as Jira's /myself would say it).
func userZone(t *testing.T, sim *jirasim.Sim, user int) *time.Location {
	loc, err := time.LoadLocation(sim.Users()[user].TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// pagedWalk reads a walk in pages of at most rowCap rows, each resumed from
// the previous page's cursor after a JSON round trip (as a $skiptoken
// carries it), and returns the keys in order and the pages read.
func pagedWalk(t *testing.T, f *export.Fetcher, w export.Walk, rowCap int) (keys []string, pages int, count int) {
	t.Helper()
	cur := export.Cursor{}
	count = -1
	for !cur.Done {
		pages++
		if pages > 5000 {
			t.Fatal("no progress")
		}
		n := 0
		var err error
		cur, err = f.Rows(context.Background(), w, cur, rowCap, func(total int, _ export.Cursor) error {
			if pages == 1 {
				count = total
			}
			return nil
		}, func(vals []any, _, _ export.Cursor) error {
			keys = append(keys, vals[0].(string))
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rowCap >= 0 && n > rowCap {
			t.Fatalf("page %d held %d rows, cap %d", pages, n, rowCap)
		}
		b, err := json.Marshal(cur)
		if err != nil {
			t.Fatal(err)
		}
		cur = export.Cursor{}
		if err := json.Unmarshal(b, &cur); err != nil {
			t.Fatal(err)
		}
	}
	return keys, pages, count
}

// oneChain reads the same JQL the obvious way: one search/jql chain.
func oneChain(t *testing.T, c *jira.Client, jql string) []string {
	t.Helper()
	var keys []string
	token := ""
	for {
		p, err := c.Search(context.Background(), jql, []string{"key"}, token, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range p.Issues {
			keys = append(keys, is.Key)
		}
		if p.IsLast {
			return keys
		}
		token = p.NextPageToken
	}
}

// TestSlicedWalksEqualOneChain: a walk cut into slices and read on many
// chains returns exactly what one search/jql chain returns, in the same
// order, for both sort fields and directions, restricted and not, as one
// stream and in pages of any size resumed from their cursors; a user in a
// zone with daylight saving (JQL reads bounds in it) sees no gap or repeat.
func TestSlicedWalksEqualOneChain(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 2600, Projects: 3, Users: 6, Seed: 41}, 0)
	// Issues made today sit beyond the generated range, where the last
	// (open-ended) slice must still find them.
	for i := 0; i < 7; i++ {
		if _, err := sim.CreateIssue(jirasim.NewIssue{Project: sim.ProjectKeys()[i%3], Summary: fmt.Sprint("new ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	zone := userZone(t, sim, 0)
	if _, off := time.Date(2024, 7, 1, 0, 0, 0, 0, zone).Zone(); off == func() int { _, o := time.Date(2024, 1, 1, 0, 0, 0, 0, zone).Zone(); return o }() {
		t.Fatalf("the site admin's zone %s has no daylight saving: pick another user", zone)
	}
	cols := keyColumns(t, c)
	rnd := rand.New(rand.NewPCG(41, 1))
	for _, where := range []string{`created >= "2000-01-01"`, inProjects(sim)[:len(inProjects(sim))-1] + ") AND status != Done"} {
		for _, order := range []string{"created DESC", "created ASC", "updated DESC", "updated", "created DESC, key ASC"} {
			want := oneChain(t, c, where+" ORDER BY "+order)
			f := &export.Fetcher{Client: c, Workers: 6, LeafRows: 37}
			w := export.Walk{Where: where, Order: order, Fields: []string{"key", "created"}, Cols: cols, Zone: zone}
			sim.ResetStats()
			got, _, count := pagedWalk(t, f, w, -1)
			stream := sim.Stats().Requests["POST /rest/api/3/search/jql"]
			if !slices.Equal(got, want) {
				t.Fatalf("%s ORDER BY %s: %d rows differ from one chain's %d (first difference at %d)", where, order, len(got), len(want), firstDiff(got, want))
			}
			if count != len(want) {
				t.Errorf("%s ORDER BY %s: counted %d, read %d", where, order, count, len(want))
			}
			// Pages of several sizes: the same rows, every page within its cap.
			for _, rowCap := range []int{1 + rnd.IntN(40), 100 + rnd.IntN(300), 900 + rnd.IntN(500)} {
				sim.ResetStats()
				paged, pages, _ := pagedWalk(t, f, w, rowCap)
				if !slices.Equal(paged, want) {
					t.Fatalf("%s ORDER BY %s in pages of %d: %d rows differ (first difference at %d)", where, order, rowCap, len(paged), firstDiff(paged, want))
				}
				if rowCap >= 900 && strings.HasPrefix(order, "created") {
					// Pages large enough to hold whole pieces resume at
					// piece boundaries: not one search page more than the
					// stream.
					if n := sim.Stats().Requests["POST /rest/api/3/search/jql"]; n != stream {
						t.Errorf("%s ORDER BY %s in %d pages of %d: %d searches, the stream made %d", where, order, pages, rowCap, n, stream)
					}
				}
			}
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestWalkOfAFewRowsIsOneCall: a page that wants a few rows reads them with
// one search page of that size: no plan, no count, no id listing.
func TestWalkOfAFewRowsIsOneCall(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 3000, Projects: 2, Users: 3, Seed: 4}, 0)
	f := &export.Fetcher{Client: c}
	w := export.Walk{Where: `created >= "2000-01-01"`, Order: "created DESC", Fields: []string{"key"}, Cols: keyColumns(t, c), Zone: userZone(t, sim, 0)}
	sim.ResetStats()
	n := 0
	end, err := f.Rows(context.Background(), w, export.Cursor{}, 1, nil, func([]any, export.Cursor, export.Cursor) error { n++; return nil })
	if err != nil || n != 1 || end.Done {
		t.Fatalf("rows %d, end %+v, %v", n, end, err)
	}
	if st := sim.Stats(); jirasim.Total(st.Requests) != 1 || st.Points != 2 {
		t.Errorf("one row cost %v requests and %d points", st.Requests, st.Points)
	}
}

// TestAnOrderThatCannotBeCutChoosesTheCheaperRead: in an order Ferry cannot
// cut into slices (by key), a walk of a few pages is read on one chain of
// pages with fields (one point an issue); a long one is listed by id and
// hydrated in parallel (two points an issue, but fast). Both return what one
// chain returns.
func TestAnOrderThatCannotBeCutChoosesTheCheaperRead(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 2400, Projects: 2, Users: 3, Seed: 8}, 0)
	cols := keyColumns(t, c)
	keys := sim.ProjectKeys()
	for _, tc := range []struct {
		where     string
		bulkfetch bool
	}{
		{"project = " + keys[0] + ` AND created < "2020-06-01"`, false},
		{"project in (" + strings.Join(keys, ",") + ")", true},
	} {
		want := oneChain(t, c, tc.where+" ORDER BY key ASC")
		f := &export.Fetcher{Client: c, Workers: 4}
		sim.ResetStats()
		got, _, count := pagedWalk(t, f, export.Walk{Where: tc.where, Order: "key ASC", Fields: []string{"key", "created"}, Cols: cols}, -1)
		if !slices.Equal(got, want) || count != len(want) {
			t.Fatalf("%s: %d rows (count %d), one chain reads %d", tc.where, len(got), count, len(want))
		}
		st := sim.Stats()
		if (st.Requests["POST /rest/api/3/issue/bulkfetch"] > 0) != tc.bulkfetch || (len(want) <= 500) == tc.bulkfetch {
			t.Errorf("%s (%d issues): %v", tc.where, len(want), st.Requests)
		}
		if !tc.bulkfetch && st.Points != int64(1+len(want)+(len(want)+99)/100) {
			t.Errorf("%s: %d points for %d issues read on one chain", tc.where, st.Points, len(want))
		}
	}
}
