package export

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/jira"
)

// The data model of a source with every table is valid, holds every
// table's relations, and every table's row has one value per column.
func TestEveryTableInTheDataModel(t *testing.T) {
	known := []jira.Field{{ID: "summary", Name: "Summary"}}
	svc, _ := service(DataSource{Fields: []string{"summary"}, Tables: TableNames()}, known)
	var buf bytes.Buffer
	if err := svc.WriteMetadata(&buf); err != nil {
		t.Fatal(err)
	}
	if len(svc.Sets) != len(TableNames()) {
		t.Fatalf("%d sets for %d tables", len(svc.Sets), len(TableNames()))
	}
	refs := 0
	for _, tb := range tableList {
		refs += len(tb.Refs)
		if (tb.PerIssue == nil) == (tb.Site == nil) {
			t.Errorf("%s: exactly one of PerIssue and Site must read it", tb.Name)
		}
		if tb.Columns[0].Name != tb.Key {
			t.Errorf("%s: the key %s is not the first column (CSV readers see the first column as the row's name)", tb.Name, tb.Key)
		}
	}
	if len(svc.Relations) != refs {
		t.Fatalf("%d relations declared, %d in the model", refs, len(svc.Relations))
	}
	for _, r := range svc.Relations {
		if !bytes.Contains(buf.Bytes(), []byte(`<ReferentialConstraint Property="`+r.Property+`" ReferencedProperty="`+r.ReferencedProperty+`"/>`)) {
			t.Errorf("%s.%s: no referential constraint in $metadata", r.From, r.Name)
		}
	}
	// Without the target set, a relation is left out rather than dangling.
	svc, _ = service(DataSource{Fields: []string{"summary"}, Tables: []string{TableIssues, "Versions"}}, known)
	if len(svc.Relations) != 0 {
		t.Fatalf("Versions without Projects: relations %v", svc.Relations)
	}
}

// The data-source form offers exactly the tables a source may include.
func TestFormOffersEveryTable(t *testing.T) {
	page, err := os.ReadFile("../web/templates/data-sources.html")
	if err != nil {
		t.Fatal(err)
	}
	var offered []string
	for _, m := range regexp.MustCompile(`name="tables" value="([^"]+)"`).FindAllSubmatch(page, -1) {
		offered = append(offered, string(m[1]))
	}
	if !slices.Equal(offered, TableNames()) {
		t.Fatalf("the form offers %v, a source may include %v", offered, TableNames())
	}
	// Each table is described on the form as its file describes it.
	for _, tb := range tableList {
		want := `value="` + tb.Name + `" id="tbl-` + strings.ToLower(tb.Name) + `"> ` + tb.Name + ` <span class="help">— ` + tb.Doc + `</span>`
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the form does not describe %s as %q", tb.Name, tb.Doc)
		}
	}
}

// Status intervals, checked against what they must add up to on generated
// histories: they chain (each starts where the last ended, in the status
// the change went to), the first starts at creation in the status the
// first change left, the last is open in the issue's current status, and
// the durations sum to the time from creation to the last change.
func TestStatusIntervalsChain(t *testing.T) {
	names := []string{"To Do", "In Progress", "In Review", "Done"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		created := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(rnd.IntN(1e6)) * time.Second)
		cur := rnd.IntN(len(names))
		first := cur
		var hist []jira.ChangeGroup
		at := created
		k := rnd.IntN(6)
		for i := range k {
			at = at.Add(time.Duration(rnd.IntN(1e5)) * time.Second) // may be the same instant
			next := rnd.IntN(len(names))
			from, to := names[cur], names[next]
			g := jira.ChangeGroup{ID: strconv.Itoa(100 + i), Created: at.Format("2006-01-02T15:04:05.000-0700"),
				Items: []jira.ChangeItem{{Field: "status", FieldID: "status", FromString: &from, ToString: &to}}}
			cur = next
			hist = append(hist, g)
		}
		// Jira may list histories in any order: shuffle them.
		rnd.Shuffle(len(hist), func(i, j int) { hist[i], hist[j] = hist[j], hist[i] })
		is := &jira.Issue{ID: "10001", Key: "A-1", Fields: map[string]json.RawMessage{
			"created": []byte(`"` + created.Format("2006-01-02T15:04:05.000-0700") + `"`),
			"status":  []byte(`{"name":"` + names[cur] + `"}`),
		}}
		rows := statusIntervals(is, jira.IssueChangelog{IssueID: "10001", Histories: hist}, nil)
		if len(rows) != k+1 {
			t.Fatalf("case %d: %d intervals for %d changes", n, len(rows), k)
		}
		var sum int64
		for i, r := range rows {
			if i == 0 && (r[3] != names[first] || !r[4].(time.Time).Equal(created)) {
				t.Fatalf("case %d: first interval %v, want %s from %v", n, r, names[first], created)
			}
			if i > 0 && !r[4].(time.Time).Equal(rows[i-1][5].(time.Time)) {
				t.Fatalf("case %d: interval %d starts at %v, the last ended at %v", n, i, r[4], rows[i-1][5])
			}
			if i < len(rows)-1 {
				sum += r[6].(int64)
			}
		}
		last := rows[len(rows)-1]
		if last[3] != names[cur] || last[5] != nil || last[6] != nil {
			t.Fatalf("case %d: last interval %v, want open in %s", n, last, names[cur])
		}
		if want := int64(at.Sub(created) / time.Second); sum != want {
			t.Fatalf("case %d: durations sum to %d s, want %d", n, sum, want)
		}
	}
}
