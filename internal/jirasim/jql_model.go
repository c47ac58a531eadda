package jirasim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// JQL over the data model's fields (model_fields.go): component, sprint,
// affectedVersion, due, worklogDate, worklogAuthor and the custom fields of
// every type, with the operators Jira's searchers offer. Values are read
// from the rendered field, so the search matches what the issue shows.
// Planted worklogs are not searched by worklogDate/worklogAuthor.

var modelOps = map[string][]string{
	"component":         opsNamed,
	"affectedversion":   opsNamed,
	"duedate":           opsOrdered,
	"worklogdate":       {"=", "!=", "<", "<=", ">", ">="},
	"worklogauthor":     {"=", "!=", "in", "not in"},
	"customfield_10020": opsNamed, // Sprint
	"customfield_10040": opsNamed,
	"customfield_10041": opsNamed,
	"customfield_10042": append(append([]string{}, opsOrdered...), "in", "not in"),
	"customfield_10043": opsNamed,
	"customfield_10044": opsNamed,
	"customfield_10045": opsNamed,
	"customfield_10046": opsNamed,
	"customfield_10047": opsNamed,
	"customfield_10048": opsText,
	"customfield_10049": opsText,
	"customfield_10050": {"=", "!=", "in", "not in", "is", "is not"},
	"customfield_10051": opsNamed,
	"customfield_10052": opsNamed,
	"customfield_10053": opsNamed,
	"customfield_10055": opsNamed,
}

// modelFieldOf maps a canonical clause to the issue field it reads.
var modelFieldOf = map[string]string{"component": "components", "affectedversion": "versions", "duedate": "duedate"}

func init() {
	for k, v := range modelOps {
		supportedOps[k] = v
	}
}

// modelClauseName canonicalises the system clauses of the data model.
func modelClauseName(lf string) (string, bool) {
	switch lf {
	case "component", "affectedversion", "duedate", "worklogdate", "worklogauthor":
		return lf, true
	case "due":
		return "duedate", true
	}
	return "", false
}

// fieldValues are issue i's values of a field as JQL matches them: each
// value's names (id, accountId, groupId, value, name, key), or the text or
// number itself.
func (c corpus) fieldValues(field string, i int) [][]string {
	if c.sim == nil {
		return nil
	}
	sel := fieldSel{include: map[string]bool{field: true}, exclude: map[string]bool{}}
	var obj map[string]any
	if json.Unmarshal(c.sim.issueFields(c.sim.BaseURL(), c, c.issue(i), sel), &obj) != nil {
		return nil
	}
	var out [][]string
	var add func(v any)
	add = func(v any) {
		switch v := v.(type) {
		case nil:
		case string:
			out = append(out, []string{v})
		case float64:
			out = append(out, []string{strconv.FormatFloat(v, 'f', -1, 64)})
		case []any:
			for _, it := range v {
				add(it)
			}
		case map[string]any:
			var names []string
			for _, k := range []string{"accountId", "id", "groupId", "value", "name", "key"} {
				switch x := v[k].(type) {
				case string:
					names = append(names, x)
				case float64:
					names = append(names, strconv.FormatFloat(x, 'f', -1, 64))
				}
			}
			if _, isUser := v["accountId"]; isUser {
				names = names[:1] // JQL finds people by accountId only
			}
			out = append(out, names)
		}
	}
	add(obj[field])
	return out
}

// compileModelClause compiles a data-model clause; ok is false for other
// fields.
func compileModelClause(cl *jqlClause, field string, c corpus, zone *time.Location, negate bool) (func(int) bool, bool, error) {
	if _, known := modelOps[field]; !known {
		return nil, false, nil
	}
	issueField := field
	if f, ok := modelFieldOf[field]; ok {
		issueField = f
	}
	switch field {
	case "worklogdate":
		t, err := parseJQLDate(cl.Values[0].Text, cl.Field, zone)
		if err != nil {
			return nil, true, err
		}
		day := len(cl.Values[0].Text) <= len("2006-01-02")
		cmp := timeCmp(cl.Op)
		return func(i int) bool {
			if i >= c.d.n {
				return false
			}
			for _, w := range c.d.genWorklogs(i) {
				v := w.Started
				if cl.Op == "=" || cl.Op == "!=" {
					if day {
						y, m, d := v.In(zone).Date()
						v = time.Date(y, m, d, 0, 0, 0, 0, zone)
					} else {
						v = v.Truncate(time.Minute)
					}
				}
				if cmp(v, t) {
					return true
				}
			}
			return false
		}, true, nil
	case "worklogauthor":
		set, err := resolveNamed(cl, len(c.d.users), func(k int) (string, string) { return c.d.users[k].AccountID, c.d.users[k].AccountID })
		if err != nil {
			return nil, true, err
		}
		return func(i int) bool {
			if i >= c.d.n {
				return false
			}
			has := false
			for _, w := range c.d.genWorklogs(i) {
				has = has || set[w.Author]
			}
			return has != negate
		}, true, nil
	case "duedate":
		d, err := parseJQLDate(cl.Values[0].Text, cl.Field, time.UTC)
		if err != nil {
			return nil, true, err
		}
		day := d.Format("2006-01-02")
		return func(i int) bool {
			vs := c.fieldValues(issueField, i)
			return len(vs) > 0 && strCmp(cl.Op, vs[0][0], day)
		}, true, nil
	case "customfield_10042":
		var want []float64
		for _, v := range cl.Values {
			f, err := strconv.ParseFloat(v.Text, 64)
			if err != nil {
				return nil, true, &JQLError{fmt.Sprintf("The value '%s' for field '%s' is not a number.", v.Text, cl.Field)}
			}
			want = append(want, f)
		}
		return func(i int) bool {
			vs := c.fieldValues(issueField, i)
			if len(vs) == 0 {
				return false
			}
			n, _ := strconv.ParseFloat(vs[0][0], 64)
			if cl.Op == "in" || cl.Op == "not in" {
				has := false
				for _, w := range want {
					has = has || n == w
				}
				return has != negate
			}
			return numCmp(cl.Op, n, want[0])
		}, true, nil
	case "customfield_10048", "customfield_10049":
		word := strings.ToLower(cl.Values[0].Text)
		return func(i int) bool {
			vs := c.fieldValues(issueField, i)
			if len(vs) == 0 {
				return false
			}
			return strings.Contains(strings.ToLower(vs[0][0]), word) != (cl.Op == "!~")
		}, true, nil
	}
	// Named values: a value matches by any of its names, case-insensitively;
	// an unknown value is refused where the field's values are a known set.
	if dom := c.modelDomain(field); dom != nil {
		for _, v := range cl.Values {
			if !dom[strings.ToLower(v.Text)] {
				return nil, true, noValue(v.Text, cl.Field)
			}
		}
	}
	want := map[string]bool{}
	for _, v := range cl.Values {
		want[strings.ToLower(v.Text)] = true
	}
	return func(i int) bool {
		vs := c.fieldValues(issueField, i)
		if len(vs) == 0 {
			return false
		}
		has := false
		for _, names := range vs {
			for _, n := range names {
				has = has || want[strings.ToLower(n)]
			}
		}
		return has != negate
	}, true, nil
}

// modelDomain is every name a field's values can have, lower-cased; nil
// for free-text values (labels, URLs).
func (c corpus) modelDomain(field string) map[string]bool {
	d := c.d
	dom := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			dom[strings.ToLower(n)] = true
		}
	}
	switch field {
	case "component":
		for p := range d.projects {
			for _, cm := range d.components(p) {
				add(strconv.Itoa(cm.ID), cm.Name)
			}
		}
	case "affectedversion", "customfield_10045", "customfield_10052":
		for _, pr := range d.projects {
			for _, v := range pr.Versions {
				add(strconv.Itoa(v.ID), v.Name)
			}
		}
	case "customfield_10020":
		for p := range d.projects {
			for k := 0; k < sprintCount; k++ {
				sp := d.sprint(p, k)
				add(strconv.Itoa(sp.ID), sp.Name)
			}
		}
	case "customfield_10040", "customfield_10041":
		for _, g := range []string{"jira-users", "jira-software-users", "jira-administrators"} {
			add(g, groupID(g))
		}
	case "customfield_10044":
		for _, o := range flagOptions {
			add(o.ID, o.Value)
		}
	case "customfield_10046":
		for _, pr := range d.projects {
			add(strconv.Itoa(pr.ID), pr.Key, pr.Name)
		}
	case "customfield_10047":
		for _, o := range severities {
			add(o.ID, o.Value)
		}
	case "customfield_10053":
		for _, r := range regions {
			add(r.ID, r.Value)
		}
	case "customfield_10051", "customfield_10055":
		for _, u := range d.users {
			add(u.AccountID)
		}
	default:
		return nil
	}
	return dom
}

// modelEmpty is "IS EMPTY" for the data model's fields.
func (c corpus) modelEmpty(field string, i int) (empty, ok bool) {
	if _, known := modelOps[field]; !known {
		return false, false
	}
	if f, ok := modelFieldOf[field]; ok {
		field = f
	}
	return len(c.fieldValues(field, i)) == 0, true
}
