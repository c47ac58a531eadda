package jirasim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// compiledJQL is a query resolved against the site and one caller's view.
type compiledJQL struct {
	match func(i int) bool // nil: every visible issue
	order []jqlSort        // canonical fields: key, created, updated
	// genLo, genHi bound the generated issues that can match: generated
	// issues are created in index order, so a range on created (ANDed at
	// the top) is an index range, found by binary search as an index would.
	genLo, genHi int
}

const unboundedJQL = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."

// compileJQL parses and resolves src. browse tells which project indexes the
// caller may see: values naming other projects fail exactly as unknown ones,
// so the error does not reveal that a project exists. Dates are read in UTC;
// see compileJQLIn.
func compileJQL(src string, c corpus, browse []bool, requireBound bool) (*compiledJQL, error) {
	return compileJQLIn(src, c, browse, requireBound, time.UTC)
}

// compileJQLIn is compileJQL reading date values ("2024-01-31 10:00") in
// zone, the searching user's time zone, as Jira does.
func compileJQLIn(src string, c corpus, browse []bool, requireBound bool, zone *time.Location) (*compiledJQL, error) {
	q, err := parseJQL(src)
	if err != nil {
		return nil, err
	}
	if q.Where == nil && requireBound {
		return nil, &JQLError{unboundedJQL}
	}
	out := &compiledJQL{}
	for _, s := range q.Order {
		f := canonicalField(s.Field)
		switch f {
		case "key", "created", "updated":
		default:
			return nil, &JQLError{fmt.Sprintf("Not able to sort using field '%s'.", s.Field)}
		}
		out.order = append(out.order, jqlSort{Field: f, Desc: s.Desc})
	}
	out.genLo, out.genHi = 0, c.d.n
	if q.Where != nil {
		if out.match, err = compileNode(q.Where, c, browse, zone); err != nil {
			return nil, err
		}
		createdRange(q.Where, c, zone, out)
	}
	return out, nil
}

// createdRange narrows genLo/genHi by the created comparisons ANDed at the
// top of the query.
func createdRange(n jqlNode, c corpus, zone *time.Location, out *compiledJQL) {
	switch n := n.(type) {
	case jqlAnd:
		createdRange(n.L, c, zone, out)
		createdRange(n.R, c, zone, out)
	case *jqlClause:
		if canonicalField(n.Field) != "created" || len(n.Values) != 1 {
			return
		}
		t, err := parseJQLDate(n.Values[0].Text, n.Field, zone)
		if err != nil {
			return
		}
		atOrAfter := sort.Search(c.d.n, func(i int) bool { return !c.d.created(i).Before(t) })
		after := sort.Search(c.d.n, func(i int) bool { return c.d.created(i).After(t) })
		switch n.Op {
		case ">=":
			out.genLo = max(out.genLo, atOrAfter)
		case ">":
			out.genLo = max(out.genLo, after)
		case "<":
			out.genHi = min(out.genHi, atOrAfter)
		case "<=":
			out.genHi = min(out.genHi, after)
		}
	}
}

// skipGen reports whether index i is a generated issue outside the range
// the query can match.
func (cq *compiledJQL) skipGen(c corpus, i int) bool {
	return i < c.d.n && (i < cq.genLo || i >= cq.genHi)
}

func canonicalField(f string) string {
	switch lf := strings.ToLower(f); lf {
	case "issuekey", "key", "id", "issue":
		return "key"
	case "createddate":
		return "created"
	case "updateddate":
		return "updated"
	case "type":
		return "issuetype"
	case "resolved":
		return "resolutiondate"
	default:
		if m, ok := modelClauseName(lf); ok {
			return m
		}
		for _, d := range fieldDefs {
			if !d.Custom {
				continue
			}
			if lf == d.ID {
				return d.ID
			}
			for _, cl := range d.Clauses {
				if strings.EqualFold(cl, f) {
					return d.ID
				}
			}
		}
		return lf
	}
}

var (
	opsNamed   = []string{"=", "!=", "in", "not in", "is", "is not"}
	opsOrdered = []string{"=", "!=", "<", "<=", ">", ">=", "is", "is not"}
	opsText    = []string{"~", "!~", "is", "is not"}
)

var supportedOps = map[string][]string{
	"project":           {"=", "!=", "in", "not in"},
	"status":            {"=", "!=", "in", "not in"},
	"issuetype":         {"=", "!=", "in", "not in"},
	"created":           {"=", "!=", "<", "<=", ">", ">="},
	"updated":           {"=", "!=", "<", "<=", ">", ">="},
	"key":               {"=", "!=", "in", "not in", "<", "<=", ">", ">="},
	"labels":            opsNamed,
	"priority":          opsNamed,
	"resolution":        opsNamed,
	"assignee":          opsNamed,
	"reporter":          opsNamed,
	"fixversion":        opsNamed,
	"summary":           opsText,
	"description":       opsText,
	"resolutiondate":    opsOrdered,
	"customfield_10010": append(append([]string{}, opsOrdered...), "in", "not in"),
	"customfield_10011": opsNamed,
	"customfield_10012": opsOrdered,
	"customfield_10013": opsOrdered,
	"customfield_10014": opsNamed,
	"customfield_10015": opsText,
	"customfield_10016": opsNamed,
}

func compileNode(n jqlNode, c corpus, browse []bool, zone *time.Location) (func(int) bool, error) {
	switch n := n.(type) {
	case jqlAnd:
		l, err := compileNode(n.L, c, browse, zone)
		if err != nil {
			return nil, err
		}
		r, err := compileNode(n.R, c, browse, zone)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return l(i) && r(i) }, nil
	case jqlOr:
		l, err := compileNode(n.L, c, browse, zone)
		if err != nil {
			return nil, err
		}
		r, err := compileNode(n.R, c, browse, zone)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return l(i) || r(i) }, nil
	case jqlNot:
		x, err := compileNode(n.X, c, browse, zone)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return !x(i) }, nil
	case *jqlClause:
		return compileClause(n, c, browse, zone)
	}
	return nil, &JQLError{"Error in the JQL Query: unsupported expression."}
}

func compileClause(cl *jqlClause, c corpus, browse []bool, zone *time.Location) (func(int) bool, error) {
	field := canonicalField(cl.Field)
	ops, known := supportedOps[field]
	if !known {
		return nil, &JQLError{fmt.Sprintf("Field '%s' does not exist or you do not have permission to view it.", cl.Field)}
	}
	okOp := false
	for _, o := range ops {
		okOp = okOp || o == cl.Op
	}
	if !okOp {
		return nil, &JQLError{fmt.Sprintf("The operator '%s' is not supported by the '%s' field.", cl.Op, cl.Field)}
	}
	if cl.Op == "is" || cl.Op == "is not" {
		return compileEmpty(cl, c, field)
	}
	negate := cl.Op == "!=" || cl.Op == "not in"
	switch field {
	case "project":
		set := make([]bool, len(c.d.projects))
		for _, v := range cl.Values {
			p, ok := findProject(c.d, v.Text)
			if !ok || !browse[p] {
				return nil, noValue(v.Text, cl.Field)
			}
			set[p] = true
		}
		return func(i int) bool { return set[c.project(i)] != negate }, nil
	case "status":
		return compileNamed(cl, negate, len(statuses), func(k int) (string, string) { return statuses[k].ID, statuses[k].Name }, c.status)
	case "priority":
		return compileNamed(cl, negate, len(priorities), func(k int) (string, string) { return priorities[k].ID, priorities[k].Name },
			func(i int) int { return c.issue(i).Priority })
	case "issuetype":
		return compileNamed(cl, negate, len(issueTypes), func(k int) (string, string) { return issueTypes[k].ID, issueTypes[k].Name },
			func(i int) int { return c.issue(i).Type })
	case "resolution":
		return compileNamed(cl, negate, 1, func(int) (string, string) { return "10000", "Done" }, func(i int) int {
			if statuses[c.status(i)].CatKey == "done" {
				return 0
			}
			return -1
		})
	case "customfield_10011":
		return compileNamed(cl, negate, len(teams), func(k int) (string, string) { return teams[k].ID, teams[k].Value },
			func(i int) int { return c.issue(i).Team })
	case "assignee", "reporter":
		return compileNamed(cl, negate, len(c.d.users), func(k int) (string, string) { return c.d.users[k].AccountID, c.d.users[k].AccountID },
			func(i int) int {
				if field == "assignee" {
					return c.issue(i).Assignee
				}
				return c.issue(i).Reporter
			})
	case "customfield_10014":
		return compileMulti(cl, negate, len(c.d.users), func(k int) (string, string) { return c.d.users[k].AccountID, c.d.users[k].AccountID },
			func(i int) []int { return c.issue(i).Reviewers })
	case "customfield_10016":
		return compileMulti(cl, negate, len(tagPool), func(k int) (string, string) { return tagPool[k].ID, tagPool[k].Value },
			func(i int) []int { return c.issue(i).Tags })
	case "fixversion":
		// Versions are per project; a name matches the version of that name
		// in the issue's project.
		want := map[string]bool{}
		for _, v := range cl.Values {
			found := false
			for _, pr := range c.d.projects {
				for _, ver := range pr.Versions {
					if strings.EqualFold(ver.Name, v.Text) || strconv.Itoa(ver.ID) == v.Text {
						found = true
					}
				}
			}
			if !found {
				return nil, noValue(v.Text, cl.Field)
			}
			want[strings.ToLower(v.Text)] = true
		}
		return func(i int) bool {
			is := c.issue(i)
			if len(is.FixVersions) == 0 {
				return false
			}
			has := false
			for _, k := range is.FixVersions {
				ver := c.d.projects[is.Project].Versions[k]
				has = has || want[strings.ToLower(ver.Name)] || want[strconv.Itoa(ver.ID)]
			}
			return has != negate
		}, nil
	case "created", "updated", "resolutiondate", "customfield_10013":
		t, err := parseJQLDate(cl.Values[0].Text, cl.Field, zone)
		if err != nil {
			return nil, err
		}
		get := func(i int) *time.Time {
			// created and updated come without generating the whole issue.
			switch field {
			case "created":
				v := c.created(i)
				return &v
			case "updated":
				v := c.updated(i)
				return &v
			}
			is := c.issue(i)
			if field == "resolutiondate" {
				if statuses[is.Status].CatKey != "done" {
					return nil
				}
				v := is.Updated
				return &v
			}
			return is.GoLive
		}
		cmp := timeCmp(cl.Op)
		return func(i int) bool {
			v := get(i)
			if v == nil {
				return false // comparisons never match an empty field
			}
			if cl.Op == "=" || cl.Op == "!=" {
				// Equality is at the minute precision a JQL date can express.
				return cmp(v.Truncate(time.Minute), t)
			}
			return cmp(*v, t)
		}, nil
	case "customfield_10012":
		d, err := parseJQLDate(cl.Values[0].Text, cl.Field, time.UTC)
		if err != nil {
			return nil, err
		}
		day := d.Format("2006-01-02")
		return func(i int) bool {
			v := c.issue(i).ReviewDate
			if v == "" {
				return false
			}
			return strCmp(cl.Op, v, day)
		}, nil
	case "customfield_10010":
		var want []float64
		for _, v := range cl.Values {
			f, err := strconv.ParseFloat(v.Text, 64)
			if err != nil {
				return nil, &JQLError{fmt.Sprintf("The value '%s' for field '%s' is not a number.", v.Text, cl.Field)}
			}
			want = append(want, f)
		}
		return func(i int) bool {
			p := c.issue(i).Points
			if p == nil {
				return false
			}
			switch cl.Op {
			case "in", "not in":
				has := false
				for _, w := range want {
					has = has || *p == w
				}
				return has != negate
			}
			return numCmp(cl.Op, *p, want[0])
		}, nil
	case "summary", "description", "customfield_10015":
		word := strings.ToLower(cl.Values[0].Text)
		return func(i int) bool {
			is := c.issue(i)
			text := is.Summary
			switch field {
			case "description":
				text = descriptionText(is)
			case "customfield_10015":
				text = is.Notes
			}
			// A crude stand-in for Jira's stemmed word search.
			return strings.Contains(strings.ToLower(text), word) != (cl.Op == "!~")
		}, nil
	case "key":
		return compileKey(cl, c, browse, negate)
	case "labels":
		// Any label value is valid JQL (labels are free text); as in Jira,
		// != and not in never match issues without labels.
		want := map[string]bool{}
		for _, v := range cl.Values {
			want[v.Text] = true
		}
		return func(i int) bool {
			ls := c.issue(i).Labels
			if negate && len(ls) == 0 {
				return false
			}
			has := false
			for _, l := range ls {
				has = has || want[l]
			}
			return has != negate
		}, nil
	}
	if f, ok, err := compileModelClause(cl, field, c, zone, negate); ok {
		return f, err
	}
	return nil, &JQLError{fmt.Sprintf("Field '%s' does not exist or you do not have permission to view it.", cl.Field)}
}

func noValue(v, field string) error {
	return &JQLError{fmt.Sprintf("The value '%s' does not exist for the field '%s'.", v, field)}
}

// compileNamed matches a single-valued field whose values have an id and a
// name: JQL finds them by either, names case-insensitively; get returns -1
// for an empty field, which != and not in never match.
func compileNamed(cl *jqlClause, negate bool, n int, value func(int) (id, name string), get func(int) int) (func(int) bool, error) {
	set, err := resolveNamed(cl, n, value)
	if err != nil {
		return nil, err
	}
	return func(i int) bool {
		k := get(i)
		if k < 0 {
			return false
		}
		return set[k] != negate
	}, nil
}

func compileMulti(cl *jqlClause, negate bool, n int, value func(int) (id, name string), get func(int) []int) (func(int) bool, error) {
	set, err := resolveNamed(cl, n, value)
	if err != nil {
		return nil, err
	}
	return func(i int) bool {
		ks := get(i)
		if len(ks) == 0 {
			return false
		}
		has := false
		for _, k := range ks {
			has = has || set[k]
		}
		return has != negate
	}, nil
}

func resolveNamed(cl *jqlClause, n int, value func(int) (id, name string)) ([]bool, error) {
	set := make([]bool, n)
	for _, v := range cl.Values {
		found := false
		for k := 0; k < n; k++ {
			id, name := value(k)
			if id == v.Text || strings.EqualFold(name, v.Text) {
				set[k], found = true, true
			}
		}
		if !found {
			return nil, noValue(v.Text, cl.Field)
		}
	}
	return set, nil
}

// compileEmpty is "field IS [NOT] EMPTY" (or NULL).
func compileEmpty(cl *jqlClause, c corpus, field string) (func(int) bool, error) {
	if v := strings.ToLower(cl.Values[0].Text); len(cl.Values) != 1 || v != "empty" && v != "null" {
		return nil, syntaxErr("Expecting 'EMPTY' or 'NULL' after '%s' but got '%s'.", strings.ToUpper(cl.Op), cl.Values[0].Text)
	}
	empty := func(i int) bool {
		is := c.issue(i)
		switch field {
		case "labels":
			return len(is.Labels) == 0
		case "priority", "summary":
			return false
		case "resolution", "resolutiondate":
			return statuses[is.Status].CatKey != "done"
		case "assignee":
			return is.Assignee < 0
		case "reporter":
			return is.Reporter < 0
		case "fixversion":
			return len(is.FixVersions) == 0
		case "description":
			return descriptionText(is) == ""
		case "customfield_10010":
			return is.Points == nil
		case "customfield_10011":
			return is.Team < 0
		case "customfield_10012":
			return is.ReviewDate == ""
		case "customfield_10013":
			return is.GoLive == nil
		case "customfield_10014":
			return len(is.Reviewers) == 0
		case "customfield_10015":
			return is.Notes == ""
		case "customfield_10016":
			return len(is.Tags) == 0
		}
		if e, ok := c.modelEmpty(field, i); ok {
			return e
		}
		return false
	}
	not := cl.Op == "is not"
	return func(i int) bool { return empty(i) != not }, nil
}

func descriptionText(is *issue) string {
	switch d := is.Description.(type) {
	case adfText:
		return string(d)
	case nil:
		return ""
	}
	return string(mustJSON(is.Description))
}

func strCmp(op, a, b string) bool {
	c := strings.Compare(a, b)
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "!=":
		return c != 0
	}
	return c == 0
}

func numCmp(op string, a, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "!=":
		return a != b
	}
	return a == b
}

func findProject(d *dataset, v string) (int, bool) {
	if p, ok := d.byKey[strings.ToUpper(v)]; ok {
		return p, true
	}
	for p, pr := range d.projects {
		if strconv.Itoa(pr.ID) == v || strings.EqualFold(pr.Name, v) {
			return p, true
		}
	}
	return 0, false
}

func timeCmp(op string) func(a, b time.Time) bool {
	switch op {
	case "<":
		return func(a, b time.Time) bool { return a.Before(b) }
	case "<=":
		return func(a, b time.Time) bool { return !a.After(b) }
	case ">":
		return func(a, b time.Time) bool { return a.After(b) }
	case ">=":
		return func(a, b time.Time) bool { return !a.Before(b) }
	case "!=":
		return func(a, b time.Time) bool { return !a.Equal(b) }
	}
	return func(a, b time.Time) bool { return a.Equal(b) }
}

// parseJQLDate accepts Jira's absolute date formats, read in zone: Jira
// reads them in the searching user's time zone.
func parseJQLDate(v, field string, zone *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04", "2006/01/02 15:04", "2006-01-02", "2006/01/02"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &JQLError{fmt.Sprintf("Date value '%s' for field '%s' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'.", v, field)}
}

func compileKey(cl *jqlClause, c corpus, browse []bool, negate bool) (func(int) bool, error) {
	resolve := func(v jqlValue) (int, error) {
		i, ok, malformed := c.lookup(v.Text)
		if malformed {
			return 0, &JQLError{fmt.Sprintf("The issue key '%s' for field '%s' is invalid.", v.Text, cl.Field)}
		}
		if !ok || !browse[c.project(i)] {
			return 0, &JQLError{fmt.Sprintf("An issue with key '%s' does not exist for field '%s'.", v.Text, cl.Field)}
		}
		return i, nil
	}
	switch cl.Op {
	case "=", "!=", "in", "not in":
		set := map[int]bool{}
		for _, v := range cl.Values {
			i, err := resolve(v)
			if err != nil {
				return nil, err
			}
			set[i] = true
		}
		return func(i int) bool { return set[i] != negate }, nil
	}
	// Range comparisons on keys order issues within the referenced project.
	ref, err := resolve(cl.Values[0])
	if err != nil {
		return nil, err
	}
	p, n := c.project(ref), c.keyNum(ref)
	var cmp func(a int) bool
	switch cl.Op {
	case "<":
		cmp = func(a int) bool { return a < n }
	case "<=":
		cmp = func(a int) bool { return a <= n }
	case ">":
		cmp = func(a int) bool { return a > n }
	default:
		cmp = func(a int) bool { return a >= n }
	}
	return func(i int) bool { return c.project(i) == p && cmp(c.keyNum(i)) }, nil
}
