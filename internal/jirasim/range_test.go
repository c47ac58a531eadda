package jirasim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestCreatedRangeSearchesMatchTheScan: a query with a range on created
// (answered through the index range, not a scan) returns exactly the issues
// whose created falls in it, in every order, across pages, and counts them
// the same; issues created through REST (outside the generated range) too.
func TestCreatedRangeSearchesMatchTheScan(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 900, Projects: 3, Users: 4, Seed: 21})
	auth := basicAuth(s.Users()[0])
	if _, err := s.CreateIssue(NewIssue{Project: s.ProjectKeys()[0], Summary: "made today"}); err != nil {
		t.Fatal(err)
	}
	// The truth: every visible issue's created, read from its JSON.
	type row struct {
		id      string
		created time.Time
	}
	var all []row
	token := ""
	for {
		body := map[string]any{"jql": `created >= "1990-01-01"`, "fields": []string{"created"}, "maxResults": 100}
		if token != "" {
			body["nextPageToken"] = token
		}
		var p searchPage
		call(t, srv.URL, "POST", "/rest/api/3/search/jql", auth, body).status(t, 200).decode(t, &p)
		for _, is := range p.Issues {
			c, err := time.Parse("2006-01-02T15:04:05.000-0700", is.Fields["created"].(string))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, row{is.ID, c})
		}
		if p.IsLast {
			break
		}
		token = p.NextPageToken
	}
	if len(all) != 901 {
		t.Fatalf("%d issues", len(all))
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	lo, hi := all[0].created, all[len(all)-1].created
	zone := time.UTC
	for i := 0; i < 40; i++ {
		a := lo.Add(time.Duration(rnd.Int64N(int64(hi.Sub(lo))))).Truncate(time.Minute)
		b := a.Add(time.Duration(rnd.Int64N(int64(hi.Sub(a)) + int64(time.Hour)))).Truncate(time.Minute)
		ops := [][2]string{{">=", "<"}, {">", "<="}}[i%2]
		jql := fmt.Sprintf(`created %s "%s" AND created %s "%s"`, ops[0], a.In(zone).Format("2006-01-02 15:04"), ops[1], b.In(zone).Format("2006-01-02 15:04"))
		if i%5 == 4 {
			jql = fmt.Sprintf(`created >= "%s"`, a.In(zone).Format("2006-01-02 15:04")) // open-ended: reaches the REST issue
		}
		var want []string
		for _, r := range all {
			in := (ops[0] == ">=" && !r.created.Before(a) || ops[0] == ">" && r.created.After(a)) &&
				(ops[1] == "<" && r.created.Before(b) || ops[1] == "<=" && !r.created.After(b))
			if i%5 == 4 {
				in = !r.created.Before(a)
			}
			if in {
				want = append(want, r.id)
			}
		}
		for _, order := range []string{"", " ORDER BY created DESC", " ORDER BY created ASC"} {
			ids, _, _ := searchAll(t, srv.URL, auth, jql+order, []string{"id"}, 1+rnd.IntN(60))
			got := slices.Clone(ids)
			if order == " ORDER BY created DESC" {
				slices.Reverse(got)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %d issues, want %d", jql+order, len(got), len(want))
			}
		}
		var n struct{ Count int }
		call(t, srv.URL, "POST", "/rest/api/3/search/approximate-count", auth, map[string]string{"jql": jql}).status(t, 200).decode(t, &n)
		if n.Count != len(want) {
			t.Fatalf("%s: count %d, want %d", jql, n.Count, len(want))
		}
	}
}
