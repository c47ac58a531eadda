package jirasim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// compiledJQL is a query resolved against the site and one caller's view.
type compiledJQL struct {
	match func(i int) bool // nil: every visible issue
	order []jqlSort        // canonical fields: key, created, updated
}

const unboundedJQL = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."

// compileJQL parses and resolves src. browse tells which project indexes the
// caller may see: values naming other projects fail exactly as unknown ones,
// so the error does not reveal that a project exists.
func compileJQL(src string, c corpus, browse []bool, requireBound bool) (*compiledJQL, error) {
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
	if q.Where != nil {
		if out.match, err = compileNode(q.Where, c, browse); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func canonicalField(f string) string {
	switch lf := strings.ToLower(f); lf {
	case "issuekey", "key", "id", "issue":
		return "key"
	case "createddate":
		return "created"
	case "updateddate":
		return "updated"
	default:
		return lf
	}
}

var supportedOps = map[string][]string{
	"project": {"=", "!=", "in", "not in"},
	"status":  {"=", "!=", "in", "not in"},
	"created": {"=", "!=", "<", "<=", ">", ">="},
	"updated": {"=", "!=", "<", "<=", ">", ">="},
	"key":     {"=", "!=", "in", "not in", "<", "<=", ">", ">="},
	"labels":  {"=", "!=", "in", "not in"},
}

func compileNode(n jqlNode, c corpus, browse []bool) (func(int) bool, error) {
	switch n := n.(type) {
	case jqlAnd:
		l, err := compileNode(n.L, c, browse)
		if err != nil {
			return nil, err
		}
		r, err := compileNode(n.R, c, browse)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return l(i) && r(i) }, nil
	case jqlOr:
		l, err := compileNode(n.L, c, browse)
		if err != nil {
			return nil, err
		}
		r, err := compileNode(n.R, c, browse)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return l(i) || r(i) }, nil
	case jqlNot:
		x, err := compileNode(n.X, c, browse)
		if err != nil {
			return nil, err
		}
		return func(i int) bool { return !x(i) }, nil
	case *jqlClause:
		return compileClause(n, c, browse)
	}
	return nil, &JQLError{"Error in the JQL Query: unsupported expression."}
}

func compileClause(cl *jqlClause, c corpus, browse []bool) (func(int) bool, error) {
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
	negate := cl.Op == "!=" || cl.Op == "not in"
	switch field {
	case "project":
		set := make([]bool, len(c.d.projects))
		for _, v := range cl.Values {
			p, ok := findProject(c.d, v.Text)
			if !ok || !browse[p] {
				return nil, &JQLError{fmt.Sprintf("The value '%s' does not exist for the field '%s'.", v.Text, cl.Field)}
			}
			set[p] = true
		}
		return func(i int) bool { return set[c.project(i)] != negate }, nil
	case "status":
		set := make([]bool, len(statuses))
		for _, v := range cl.Values {
			s := -1
			for k, st := range statuses {
				if strings.EqualFold(st.Name, v.Text) || st.ID == v.Text {
					s = k
				}
			}
			if s < 0 {
				return nil, &JQLError{fmt.Sprintf("The value '%s' does not exist for the field '%s'.", v.Text, cl.Field)}
			}
			set[s] = true
		}
		return func(i int) bool { return set[c.status(i)] != negate }, nil
	case "created", "updated":
		t, err := parseJQLDate(cl.Values[0].Text, cl.Field)
		if err != nil {
			return nil, err
		}
		get := c.created
		if field == "updated" {
			get = c.updated
		}
		cmp := timeCmp(cl.Op)
		if cl.Op == "=" || cl.Op == "!=" {
			// Equality is at the minute precision a JQL date can express.
			return func(i int) bool { return cmp(get(i).Truncate(time.Minute), t) }, nil
		}
		return func(i int) bool { return cmp(get(i), t) }, nil
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
	return nil, &JQLError{fmt.Sprintf("Field '%s' does not exist or you do not have permission to view it.", cl.Field)}
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

// parseJQLDate accepts Jira's absolute date formats; times are in the
// site's time zone, which is UTC for the simulator.
func parseJQLDate(v, field string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04", "2006/01/02 15:04", "2006-01-02", "2006/01/02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
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
