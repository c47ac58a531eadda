package jirasim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestModelJQLMatchesFieldValues: for the data model's clauses, generated
// queries over values the issues really hold find exactly the issues whose
// field, as the issue shows it, satisfies the clause — computed here from
// the fetched JSON.
func TestModelJQLMatchesFieldValues(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 300, Projects: 3, Users: 8, Seed: 77})
	admin := basicAuth(s.Users()[0])
	// Every issue with every field, as the admin sees it.
	issues := map[string]map[string]json.RawMessage{}
	var order []string
	for token := ""; ; {
		var page struct {
			Issues []struct {
				ID     string
				Fields map[string]json.RawMessage
			}
			NextPageToken string
			IsLast        bool
		}
		call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": "created >= 2000-01-01", "fields": []string{"*all"}, "maxResults": 100, "nextPageToken": token}).status(t, 200).decode(t, &page)
		for _, is := range page.Issues {
			issues[is.ID] = is.Fields
			order = append(order, is.ID)
		}
		if page.IsLast {
			break
		}
		token = page.NextPageToken
	}
	// names lists each value's names as JQL may use them.
	names := func(raw json.RawMessage) [][]string {
		var v any
		json.Unmarshal(raw, &v)
		var out [][]string
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case []any:
				for _, x := range v {
					walk(x)
				}
			case string:
				out = append(out, []string{v})
			case map[string]any:
				if a, ok := v["accountId"].(string); ok {
					out = append(out, []string{a})
					return
				}
				var ns []string
				for _, k := range []string{"id", "groupId", "value", "name", "key"} {
					switch x := v[k].(type) {
					case string:
						ns = append(ns, x)
					case float64:
						ns = append(ns, strconv.Itoa(int(x)))
					}
				}
				out = append(out, ns)
			}
		}
		walk(v)
		return out
	}
	search := func(jql string) []string {
		var ids []string
		for token := ""; ; {
			var page struct {
				Issues        []struct{ ID string }
				NextPageToken string
				IsLast        bool
			}
			r := call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": "created >= 2000-01-01 AND " + jql, "maxResults": 5000, "nextPageToken": token})
			if r.resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", jql, r.resp.StatusCode, r.body)
			}
			r.decode(t, &page)
			for _, is := range page.Issues {
				ids = append(ids, is.ID)
			}
			if page.IsLast {
				return ids
			}
			token = page.NextPageToken
		}
	}
	rnd := rand.New(rand.NewPCG(77, 1))
	cases := 0
	for _, f := range []struct{ clause, field string }{
		{"component", "components"}, {"affectedVersion", "versions"}, {"Sprint", "customfield_10020"}, {"Severity", "customfield_10047"},
		{"Flags", "customfield_10044"}, {"Region", "customfield_10053"}, {`"Approver Group"`, "customfield_10040"},
		{"cf[10041]", "customfield_10041"}, {`"Related Project"`, "customfield_10046"}, {`"QA Owner"`, "customfield_10051"},
		{`"Request participants"`, "customfield_10055"}, {`"Target Release"`, "customfield_10052"}, {`"Affected Releases"`, "customfield_10045"},
		{"Themes", "customfield_10043"},
	} {
		var pool []string
		for _, id := range order {
			for _, ns := range names(issues[id][f.field]) {
				pool = append(pool, ns[rnd.IntN(len(ns))])
			}
		}
		if len(pool) == 0 {
			t.Fatalf("%s: no values in the corpus", f.field)
		}
		for _, op := range []string{"=", "!=", "in", "not in", "is EMPTY", "is not EMPTY"} {
			var want []string
			vals := []string{pool[rnd.IntN(len(pool))], pool[rnd.IntN(len(pool))]}
			jql := f.clause + " " + op
			switch op {
			case "=", "!=":
				vals = vals[:1]
				jql += ` "` + vals[0] + `"`
			case "in", "not in":
				jql += ` ("` + vals[0] + `", "` + vals[1] + `")`
			}
			for _, id := range order {
				vs := names(issues[id][f.field])
				has := false
				for _, ns := range vs {
					for _, n := range ns {
						for _, v := range vals {
							has = has || strings.EqualFold(n, v)
						}
					}
				}
				var match bool
				switch op {
				case "=", "in":
					match = has
				case "!=", "not in":
					match = len(vs) > 0 && !has
				case "is EMPTY":
					match = len(vs) == 0
				case "is not EMPTY":
					match = len(vs) > 0
				}
				if match {
					want = append(want, id)
				}
			}
			if got := search(jql); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
				t.Errorf("%s: %d issues, the fields say %d", jql, len(got), len(want))
			}
			cases++
		}
	}
	// Ordered and text clauses.
	var dues []string
	for _, id := range order {
		var d string
		if json.Unmarshal(issues[id]["duedate"], &d) == nil && d != "" {
			dues = append(dues, d)
		}
	}
	slices.Sort(dues)
	mid := dues[len(dues)/2]
	for _, op := range []string{"<", "<=", ">", ">=", "=", "!="} {
		var want []string
		for _, id := range order {
			var d string
			if json.Unmarshal(issues[id]["duedate"], &d) == nil && d != "" && strCmp(op, d, mid) {
				want = append(want, id)
			}
		}
		if got := search(fmt.Sprintf(`due %s "%s"`, op, mid)); !reflect.DeepEqual(got, want) {
			t.Errorf("due %s %s: %d issues, the fields say %d", op, mid, len(got), len(want))
		}
		cases++
	}
	// worklogDate: issues with a worklog started on/after a day, from the
	// per-issue worklog lists.
	day := "2023-06-01"
	dayT, _ := time.Parse("2006-01-02", day)
	var want []string
	for _, id := range order {
		for _, w := range issueWorklogs(t, srv.URL, admin, id, 0) {
			st, _ := time.Parse(jiraTime, w.Started)
			if !st.Before(dayT) {
				want = append(want, id)
				break
			}
		}
	}
	if got := search(`worklogDate >= "` + day + `"`); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("worklogDate >= %s: %d issues, the worklogs say %d", day, len(got), len(want))
	}
	r := call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": `Severity = "Sev 9"`})
	if r.resp.StatusCode != 400 || !strings.Contains(string(r.body), "does not exist for the field") {
		t.Errorf("unknown option: %d %s", r.resp.StatusCode, r.body)
	}
	r = call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": `Severity ~ "Sev"`})
	if r.resp.StatusCode != 400 {
		t.Errorf("~ on an option field: %d", r.resp.StatusCode)
	}
	if cases < 80 {
		t.Fatalf("only %d cases", cases)
	}
}
