package export_test

import (
	"flag"
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

var (
	sliceWalks = flag.Int("slices.walks", 12, "generated sites walked by TestSlicedWalksEqualOneChainOnGeneratedSites")
	sliceSeed  = flag.Uint64("slices.seed", 20261130, "seed of the generated sites")
)

// TestSlicedWalksEqualOneChainOnGeneratedSites: on generated sites — any
// size from a few pages to ninety, one to five projects, issues made today
// beyond the generated range — a generated query (the whole site, some
// projects, a sparse filter, both sort fields and directions, a second sort
// key), read by the default planner (with and without a tenant whose burst
// rate and round trip size the leaves) in pages of a generated size, each
// resumed from its cursor, returns exactly the rows one search/jql chain
// returns, in its order, and $count equals them. The long run is
// `-slices.walks 4000` (docs/benchmarks.md).
func TestSlicedWalksEqualOneChainOnGeneratedSites(t *testing.T) {
	rnd := rand.New(rand.NewPCG(*sliceSeed, 3))
	heads := rand.New(rand.NewPCG(*sliceSeed, 7)) // a walk of changes, and its head (kept apart: the other draws stay as they were)
	for walk := range *sliceWalks {
		n := 200 + rnd.IntN(9000)
		projects := 1 + rnd.IntN(5)
		seed := rnd.Int64()
		sim := jirasim.New(jirasim.Options{Issues: n, Projects: projects, Users: 3, Seed: seed})
		srv := httptest.NewServer(sim)
		sim.SetBaseURL(srv.URL)
		for i := range rnd.IntN(20) {
			if _, err := sim.CreateIssue(jirasim.NewIssue{Project: sim.ProjectKeys()[i%projects], Summary: fmt.Sprint("today ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		u := sim.Users()[0]
		c, err := jira.New(srv.URL, srv.Client(), basicAuth{u.Email, u.APIToken})
		if err != nil {
			t.Fatal(err)
		}
		some := slices.Clone(sim.ProjectKeys())
		rnd.Shuffle(len(some), func(i, j int) { some[i], some[j] = some[j], some[i] })
		some = some[:1+rnd.IntN(len(some))]
		in := "project in (" + strings.Join(some, ", ") + ")"
		wheres := []string{`created >= "2000-01-01"`, in, "status != Done", "priority in (High, Highest)", in + " AND status = Done"}
		orders := []string{"created ASC", "created DESC", "updated ASC", "updated DESC", "created DESC, key ASC", "updated"}
		where, order := wheres[rnd.IntN(len(wheres))], orders[rnd.IntN(len(orders))]
		want := oneChain(t, c, where+" ORDER BY "+order)
		if rnd.IntN(2) == 0 {
			c.Limits = (&jira.Limits{}).Tenant(fmt.Sprint("site", walk))
			sim.SetKnobs(jirasim.Knobs{Latency: time.Duration(rnd.IntN(20)) * time.Millisecond, Rate: float64(100 + rnd.IntN(900))})
		}
		rowCap := -1
		if rnd.IntN(2) == 0 {
			rowCap = 1 + rnd.IntN(3000)
		}
		f := &export.Fetcher{Client: c}
		w := export.Walk{Where: where, Order: order, Fields: []string{"key", "created"}, Cols: keyColumns(t, c), Zone: userZone(t, sim, 0)}
		if heads.IntN(3) == 0 {
			w.Changes, f.HeadPages = true, 1+heads.IntN(8)
		}
		got, _, count := pagedWalk(t, f, w, rowCap)
		srv.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("site of %d issues, %d projects, seed %d; %s ORDER BY %s in pages of %d (changes: %v, head of %d pages): %d rows differ from one chain's %d (first difference at %d)",
				n, projects, seed, where, order, rowCap, w.Changes, f.HeadPages, len(got), len(want), firstDiff(got, want))
		}
		if count != -1 && count != len(want) {
			t.Errorf("site of %d issues, seed %d; %s ORDER BY %s: $count %d, rows %d", n, seed, where, order, count, len(want))
		}
	}
}

// TestSlicedWalkBoundsOnADenseSite: on a site where an issue is made about
// every 45 seconds, many issues fall on a leaf's bound minute, some on its
// very first second: each belongs to exactly one leaf (>= the lower bound,
// < the upper), so a walk cut into many leaves still equals one chain, by
// created either way, and in pages resumed from cursors.
func TestSlicedWalkBoundsOnADenseSite(t *testing.T) {
	c, sim := simClient(t, jirasim.Options{Issues: 1_500_000, Projects: 3, Users: 3, Seed: 5}, 0)
	const where = `created >= "2023-03-01" AND created < "2023-03-04"`
	// By created: the simulator finds a created range without reading every
	// issue (by updated it reads all 1.5 million per call).
	for _, order := range []string{"created ASC", "created DESC"} {
		want := oneChain(t, c, where+" ORDER BY "+order)
		if len(want) < 2000 {
			t.Fatalf("%d issues in the window: not dense enough to test bounds", len(want))
		}
		for _, leaf := range []int{37, 0} {
			f := &export.Fetcher{Client: c, LeafRows: leaf}
			w := export.Walk{Where: where, Order: order, Fields: []string{"key", "created"}, Cols: keyColumns(t, c), Zone: userZone(t, sim, 0)}
			for _, rowCap := range []int{-1, 333} {
				got, _, _ := pagedWalk(t, f, w, rowCap)
				if !slices.Equal(got, want) {
					t.Fatalf("%s, leaves of %d, pages of %d: %d rows differ from one chain's %d (first difference at %d)", order, leaf, rowCap, len(got), len(want), firstDiff(got, want))
				}
			}
		}
	}
}
