package export_test

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// TestSlicedWalkReadsAlmostOnlyFullPages: a sliced walk reads its issues
// in about as many search/jql pages as one sequential chain does —
// ceil(n/100) — and not one part-empty last page per leaf. Generated sites
// and queries: site sizes and seeds drawn at random; the whole site, some of
// its projects (gaps in the created range, where other projects' blocks
// are), a random part of the issues (status, priority: sparse), with issues
// made today beyond the generated range; ordered by created or updated
// (updated piles up at the end of the data), either way. Against a site
// with a burst limit and a round trip, so the walk is sized for a real
// tenant's parallelism. Every walk's rows are exactly one chain's, in its
// order. Counted by the simulator (calls it answered), not timed. Bounds:
// a walk of issues made at an even pace (the whole site) within 5 % of
// one chain's pages, any walk within 25 %, all of them within 10 %, each
// with the two planning calls. Before leaves ended where a search page
// does, these walks took 10–26 % more calls than one chain, 16 % in all.
func TestSlicedWalkReadsAlmostOnlyFullPages(t *testing.T) {
	if testing.Short() {
		t.Skip("reads several sites of 12,000–30,000 issues")
	}
	rnd := rand.New(rand.NewPCG(20, 26))
	type walkCase struct {
		where, order string
		even         bool // every issue: made at an even pace
	}
	const search = "POST /rest/api/3/search/jql"
	var total, full, walks int
	for round := range 3 {
		n := 12_000 + rnd.IntN(18_000)
		projects := 3 + rnd.IntN(4)
		sim := jirasim.New(jirasim.Options{Issues: n, Projects: projects, Users: 3, Seed: rnd.Int64()})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		sim.SetBaseURL(srv.URL)
		for i := range 1 + rnd.IntN(30) {
			if _, err := sim.CreateIssue(jirasim.NewIssue{Project: sim.ProjectKeys()[i%projects], Summary: fmt.Sprint("today ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		u := sim.Users()[0]
		c, err := jira.New(srv.URL, srv.Client(), basicAuth{u.Email, u.APIToken})
		if err != nil {
			t.Fatal(err)
		}
		keys := sim.ProjectKeys()
		some := slices.Clone(keys)
		rnd.Shuffle(len(some), func(i, j int) { some[i], some[j] = some[j], some[i] })
		some = some[:1+rnd.IntN(len(some)-1)]
		dir := []string{" ASC", " DESC"}
		cases := []walkCase{
			{`created >= "2000-01-01"`, "created" + dir[rnd.IntN(2)], true},
			{"project in (" + strings.Join(some, ", ") + ")", "created" + dir[rnd.IntN(2)], false},
			{[]string{"status != Done", "status = Done", "priority in (High, Highest)", "priority = Medium"}[rnd.IntN(4)], "created" + dir[rnd.IntN(2)], false},
			{"project in (" + strings.Join(some, ", ") + ") AND status != Done", "updated" + dir[rnd.IntN(2)], false},
		}
		cols := keyColumns(t, c)
		zone := userZone(t, sim, 0)
		for _, wc := range cases {
			sim.SetKnobs(jirasim.Knobs{})
			want := oneChain(t, c, wc.where+" ORDER BY "+wc.order)
			if len(want) < 5_000 {
				continue // planned as one chain, or few leaves: nothing to measure
			}
			// A tenant of its own per walk, learning this site's burst rate
			// and round trip from its answers as a feed's would.
			c.Limits = (&jira.Limits{}).Tenant(fmt.Sprint("site", round, wc.where, wc.order))
			sim.SetKnobs(jirasim.Knobs{Latency: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Rate: 400})
			sim.ResetStats()
			f := &export.Fetcher{Client: c}
			w := export.Walk{Where: wc.where, Order: wc.order, Fields: []string{"key", "created"}, Cols: cols, Zone: zone}
			got, _, _ := pagedWalk(t, f, w, -1)
			c.Limits = nil
			if !slices.Equal(got, want) {
				t.Fatalf("%s ORDER BY %s: %d rows differ from one chain's %d (first difference at %d)", wc.where, wc.order, len(got), len(want), firstDiff(got, want))
			}
			// Calls Jira answered: a call refused over the burst rate and sent
			// again is the adaptive limit's business, not the plan's.
			st := sim.Stats()
			calls := int(st.Requests[search] - st.Throttled[search])
			pages := (len(want) + jira.MaxPage - 1) / jira.MaxPage
			total += calls
			full += pages
			// Two of the calls find the first and last value (a page of one
			// issue each); the rest read rows.
			t.Logf("%6d issues, %s ORDER BY %s: %d search calls, one chain %d (+%.1f %%)", len(want), wc.where, wc.order, calls, pages, 100*float64(calls-pages)/float64(pages))
			walks++
			bound := pages + pages/4 // issues at an uneven pace: a leaf's count is a guess
			if wc.even {
				bound = pages + pages/20 // issues made at an even pace: leaves hold what they were cut for
			}
			if calls > bound+2 {
				t.Errorf("%s ORDER BY %s: %d search calls for %d issues; one chain reads them in %d pages, the bound is %d and two", wc.where, wc.order, calls, len(want), pages, bound)
			}
		}
	}
	if total > full+full/10+2*walks {
		t.Errorf("in all %d search calls where one chain makes %d: more than a tenth over, and two a walk", total, full)
	}
	t.Logf("in all: %d search calls where one chain makes %d (+%.1f %%)", total, full, 100*float64(total-full)/float64(full))
}
