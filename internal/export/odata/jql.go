package odata

import (
	"regexp"
	"strings"
	"time"
)

// FoldKind says how far JQL can search a property exactly as OData means it.
type FoldKind int

const (
	// FoldNone: JQL cannot search the property (text fields, derived
	// values): a filter on it is applied by Ferry on the stream.
	FoldNone FoldKind = iota
	// FoldExact: JQL compares values exactly as OData does (numbers,
	// calendar dates): every comparison and in fold into JQL.
	FoldExact
	// FoldName: JQL matches names case-insensitively and by id (status,
	// project, priority, options, versions). eq and in narrow Jira's search
	// to a superset; Ferry keeps the exact matches on the stream.
	FoldName
	// FoldDateTime: JQL reads "yyyy-MM-dd HH:mm" in the searching user's
	// time zone. Minute boundaries fold exactly; anything finer narrows to
	// the surrounding minutes and is decided on the stream.
	FoldDateTime
	// FoldID: the issue id. eq and in fold (JQL "id" is an issue
	// reference); ordering does not (JQL orders it as an issue key).
	FoldID
	// FoldKey: the issue key. eq and in narrow to a superset (JQL matches
	// keys case-insensitively and by a moved issue's old key).
	FoldKey
	// FoldPresence: only "is empty" folds (user pickers): any other
	// comparison narrows to "is not empty" at best.
	FoldPresence
	// FoldBoundedBy: a date-time of a row inside an issue (a worklog, a
	// comment, a status change) that is never later than the issue's
	// date-time Clause ("updated"). ge, gt and eq narrow the search to
	// issues whose Clause is at least the value; the rows are matched on
	// the stream. Nothing else folds.
	FoldBoundedBy
)

// JQLField is how one OData property is searched in JQL.
type JQLField struct {
	Clause string   // the JQL field: "key", "created", "status", "cf[10010]", or a field name (quoted when needed)
	Kind   FoldKind // what of a comparison JQL can say
	// Empty: JQL accepts "IS EMPTY" / "IS NOT EMPTY" on the field. Fields
	// Jira never leaves empty (status, project, issue type) refuse them.
	Empty bool
}

// FieldMap tells JQL how to search an entity set.
type FieldMap struct {
	Fields map[string]JQLField // by OData property name; a property not here is filtered on the stream only
	// Zone is the time zone of the Jira user the search runs as: JQL reads
	// "2024-01-31 10:00" in that zone. Required for DateTimeOffset folds.
	Zone *time.Location
	// Widen drops every value Jira could refuse as unknown (a status,
	// project, option or issue that does not exist or is not visible):
	// Jira answers such a query with an error, where OData's answer is
	// simply no match. A feed whose narrow query Jira refuses retries wide.
	Widen bool
}

// Fold is what JQL can do for a $filter: the widest JQL that still holds
// every matching row, and whether it holds only those.
type Fold struct {
	JQL   string // the condition; "" for none (every row of the source)
	Exact bool   // JQL selects exactly the matching rows; otherwise keep the rows for which Match is true
	Never bool   // no row can match (e.g. Status eq null on a field Jira never leaves empty): Jira need not be asked
	// Refusable: JQL names values Jira may refuse as unknown; see FieldMap.Widen.
	Refusable bool
}

// Fold translates e into JQL without ORDER BY. It never answers a different
// set: a comparison JQL cannot say exactly is widened to a condition that
// holds every match (at worst none at all), Exact is false, and the caller
// drops the rows for which e.Match is false as they stream by. A nil Expr
// folds to "" exactly.
//
// Negation is pushed down to the comparisons (JQL NOT is never emitted), and
// where OData counts a null value as a match (ne, not gt, …) the clause says
// "OR f IS EMPTY": JQL's != and NOT IN never match empty fields.
func (e *Expr) Fold(m FieldMap) (Fold, error) {
	if e == nil {
		return Fold{Exact: true}, nil
	}
	c, err := e.fold(m, false)
	if err != nil {
		return Fold{}, err
	}
	f := Fold{Exact: c.exact, Refusable: c.refusable}
	switch c.kind {
	case condFalse:
		f.Never = true
	case condJQL:
		f.JQL = c.jql
	}
	return f, nil
}

type condKind int

const (
	condTrue condKind = iota
	condFalse
	condJQL
)

// cond is a folded sub-expression: JQL (or a constant), and whether it is
// exact or a superset.
type cond struct {
	kind      condKind
	jql       string
	exact     bool
	refusable bool
}

var (
	exactTrue  = cond{kind: condTrue, exact: true}
	exactFalse = cond{kind: condFalse, exact: true}
	superset   = cond{kind: condTrue} // no restriction; decide on the stream
)

func jqlCond(s string, exact bool) cond { return cond{kind: condJQL, jql: s, exact: exact} }

// A false cond is always exact: a superset of some rows is never "none".
func and(l, r cond) cond {
	switch {
	case l.kind == condFalse || r.kind == condFalse:
		return exactFalse
	case l.kind == condTrue:
		r.exact = r.exact && l.exact
		return r
	case r.kind == condTrue:
		l.exact = l.exact && r.exact
		return l
	}
	return cond{kind: condJQL, jql: "(" + l.jql + " AND " + r.jql + ")", exact: l.exact && r.exact, refusable: l.refusable || r.refusable}
}

func or(l, r cond) cond {
	switch {
	case l.kind == condTrue && l.exact, r.kind == condTrue && r.exact:
		return exactTrue
	case l.kind == condTrue || r.kind == condTrue:
		return superset
	case l.kind == condFalse:
		r.exact = r.exact && l.exact
		return r
	case r.kind == condFalse:
		l.exact = l.exact && r.exact
		return l
	}
	return cond{kind: condJQL, jql: "(" + l.jql + " OR " + r.jql + ")", exact: l.exact && r.exact, refusable: l.refusable || r.refusable}
}

func (e *Expr) fold(m FieldMap, neg bool) (cond, error) {
	switch e.Op {
	case OpNot:
		return e.Left.fold(m, !neg)
	case OpAnd, OpOr:
		l, err := e.Left.fold(m, neg)
		if err != nil {
			return cond{}, err
		}
		r, err := e.Right.fold(m, neg)
		if err != nil {
			return cond{}, err
		}
		if (e.Op == OpOr) != neg { // De Morgan
			return or(l, r), nil
		}
		return and(l, r), nil
	case OpContains, OpStartsWith, OpEndsWith:
		return superset, nil // JQL has only ~, a stemmed word match
	}
	return e.atom(m, neg)
}

// complement of a comparison under negation, for non-null values.
var complement = map[Op]Op{OpEq: OpNe, OpNe: OpEq, OpGt: OpLe, OpGe: OpLt, OpLt: OpGe, OpLe: OpGt}

var jqlOps = map[Op]string{OpEq: "=", OpNe: "!=", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<="}

// atom folds one comparison, negated when neg. It splits OData's meaning
// into the rows whose value is not null (compared) and those whose value is
// null (a match only for ne, eq null and negated comparisons).
func (e *Expr) atom(m FieldMap, neg bool) (cond, error) {
	f, ok := m.Fields[e.Property]
	if !ok || f.Clause == "" {
		f = JQLField{Kind: FoldNone}
	}
	clause := jqlFieldRef(f.Clause)
	nullable := !e.notNull
	isEmpty := func(not bool) cond {
		switch {
		case !nullable:
			if not {
				return exactTrue
			}
			return exactFalse
		case f.Kind == FoldNone || !f.Empty:
			return superset
		case not:
			return jqlCond(clause+" IS NOT EMPTY", true)
		}
		return jqlCond(clause+" IS EMPTY", true)
	}
	// eq null / ne null.
	if e.Op != OpIn && e.Value.IsNull() {
		return isEmpty((e.Op == OpNe) != neg), nil
	}
	op := e.Op
	if neg && op != OpIn {
		op = complement[op]
	}
	nullMatches := (e.Op == OpNe) != neg
	var values cond
	if e.Op == OpIn {
		for _, l := range e.List {
			if l.IsNull() {
				nullMatches = !neg
			}
		}
		values = e.foldIn(f, clause, m, neg)
	} else {
		values = e.foldComparison(f, clause, m, op)
	}
	if values.kind == condTrue && !values.exact {
		if nullMatches {
			return superset, nil
		}
		return and(isEmpty(true), superset), nil // at least "is not empty"
	}
	if nullMatches {
		return or(values, isEmpty(false)), nil
	}
	return values, nil
}

// foldComparison folds "Property op Value" for rows whose value is not null.
func (e *Expr) foldComparison(f JQLField, clause string, m FieldMap, op Op) cond {
	l := e.Value
	switch f.Kind {
	case FoldExact:
		if v, ok := jqlLiteral(l); ok && l.Type != EdmString {
			return jqlCond(clause+" "+jqlOps[op]+" "+v, true)
		}
	case FoldName, FoldKey, FoldID:
		if op != OpEq || m.Widen {
			return superset
		}
		if v, ok := jqlLiteral(l); ok {
			c := jqlCond(clause+" = "+v, f.Kind == FoldID)
			c.refusable = true
			return c
		}
	case FoldDateTime:
		if l.Type == EdmDateTimeOffset && m.Zone != nil {
			return foldDateTime(clause, op, l.Time, m.Zone)
		}
	case FoldBoundedBy:
		if l.Type == EdmDateTimeOffset && m.Zone != nil && (op == OpGe || op == OpGt || op == OpEq) {
			c := foldDateTime(clause, OpGe, l.Time, m.Zone)
			c.exact = false
			return c
		}
	}
	return superset
}

// foldIn folds "Property in (…)" (or its negation) for non-null values.
func (e *Expr) foldIn(f JQLField, clause string, m FieldMap, neg bool) cond {
	var vals []string
	for _, l := range e.List {
		if l.IsNull() {
			continue
		}
		v, ok := jqlLiteral(l)
		if !ok {
			return superset
		}
		vals = append(vals, v)
	}
	if len(vals) == 0 {
		if neg {
			return exactTrue
		}
		return exactFalse
	}
	list := "(" + strings.Join(vals, ", ") + ")"
	switch f.Kind {
	case FoldExact:
		if e.List[0].Type == EdmString {
			return superset
		}
		// As = and != joined: not every field that compares exactly takes
		// IN (date pickers do not).
		c := exactFalse
		if neg {
			c = exactTrue
		}
		for _, v := range vals {
			if neg {
				c = and(c, jqlCond(clause+" != "+v, true))
			} else {
				c = or(c, jqlCond(clause+" = "+v, true))
			}
		}
		return c
	case FoldName, FoldKey, FoldID:
		if neg || m.Widen {
			return superset
		}
		c := jqlCond(clause+" IN "+list, f.Kind == FoldID)
		c.refusable = true
		return c
	case FoldDateTime:
		if neg || m.Zone == nil {
			return superset
		}
		c := exactFalse
		for _, l := range e.List {
			if !l.IsNull() {
				c = or(c, foldDateTime(clause, OpEq, l.Time, m.Zone))
			}
		}
		return c
	}
	return superset
}

// jqlLiteral writes a literal as a JQL value. Strings JQL cannot hold
// exactly (empty, control characters) and booleans have none.
func jqlLiteral(l Literal) (string, bool) {
	switch l.Type {
	case EdmString:
		if l.Str == "" {
			return "", false
		}
		return jqlString(l.Str)
	case EdmInt64, EdmDecimal:
		return l.Num, true
	case EdmDate:
		return `"` + l.Time.Format(time.DateOnly) + `"`, true
	}
	return "", false
}

// jqlString quotes s as a JQL string: backslash and double quote are
// escaped, so the value can never end the string early. Control characters
// are not sent (ok is false), since JQL's escapes for them are not reliable
// across Jira versions.
func jqlString(s string) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			return "", false
		case r == '\\' || r == '"':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), true
}

// foldDateTime folds a comparison with the instant t. JQL has minutes in
// the user's zone, and only ">=" and "<" at a minute mean the same in every
// reading of JQL; the rest narrows to the enclosing minutes and is decided
// on the stream.
func foldDateTime(clause string, op Op, t time.Time, zone *time.Location) cond {
	floor := t.Truncate(time.Minute)
	aligned := floor.Equal(t)
	ge := func(b time.Time, exact bool) cond {
		w, shifted := wallBound(b, zone, -1)
		return jqlCond(clause+` >= "`+w+`"`, exact && !shifted)
	}
	lt := func(b time.Time, exact bool) cond {
		w, shifted := wallBound(b, zone, +1)
		return jqlCond(clause+` < "`+w+`"`, exact && !shifted)
	}
	switch op {
	case OpGe:
		return ge(floor, aligned)
	case OpGt:
		return ge(floor, false)
	case OpLt:
		if aligned {
			return lt(t, true)
		}
		return lt(floor.Add(time.Minute), false)
	case OpLe:
		return lt(floor.Add(time.Minute), false)
	case OpEq:
		return and(ge(floor, false), lt(floor.Add(time.Minute), false))
	}
	return superset
}

// wallBound renders the instant b as JQL's "yyyy-MM-dd HH:mm" in zone. When
// that wall-clock time happens twice (clocks going back), JQL could read
// either instant, so the bound moves outwards (dir -1 earlier, +1 later) to
// a wall time that is unambiguous; shifted reports that it moved.
func wallBound(b time.Time, zone *time.Location, dir int) (string, bool) {
	shifted := false
	for range 16 {
		wall := b.In(zone).Format("2006-01-02 15:04")
		if !ambiguous(b, wall, zone) {
			return wall, shifted
		}
		b, shifted = b.Add(time.Duration(dir)*30*time.Minute), true
	}
	return b.In(zone).Format("2006-01-02 15:04"), true
}

func ambiguous(t time.Time, wall string, zone *time.Location) bool {
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		if t.Add(d).In(zone).Format("2006-01-02 15:04") == wall {
			return true
		}
	}
	return false
}

var (
	jqlPlainField  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	jqlCustomField = regexp.MustCompile(`^cf\[[0-9]+\]$`)
)

// jqlFieldRef writes a field reference: plain names and cf[n] as they are,
// anything else (a custom field's display name) quoted.
func jqlFieldRef(name string) string {
	if jqlPlainField.MatchString(name) && !jqlReserved[strings.ToLower(name)] || jqlCustomField.MatchString(name) {
		return name
	}
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	q, _ := jqlString(clean) // cannot fail: control characters are gone
	return q
}

// JQL words that cannot be bare field names.
var jqlReserved = map[string]bool{
	"and": true, "or": true, "not": true, "empty": true, "null": true, "order": true, "by": true,
	"asc": true, "desc": true, "in": true, "is": true, "was": true, "changed": true,
}

// JQLOrderBy translates $orderby into the terms of a JQL ORDER BY clause,
// without the keywords ("created DESC, id ASC"; "" for none). A nullable
// property is refused: JQL puts empty values last, OData first.
func JQLOrderBy(items []OrderItem, set EntitySet, m FieldMap) (string, error) {
	if len(items) == 0 {
		return "", nil
	}
	parts := make([]string, len(items))
	for i, o := range items {
		p, ok := set.Property(o.Property)
		if !ok || !p.Sortable {
			return "", notImplemented("$orderby", "$orderby: sorting by %s is not supported", o.Property)
		}
		f, ok := m.Fields[o.Property]
		if !ok || f.Clause == "" {
			return "", notImplemented("$orderby", "$orderby: %s cannot be sorted in JQL", o.Property)
		}
		if p.Nullable {
			return "", notImplemented("$orderby", "$orderby: %s may be empty, and JQL sorts empty values differently from OData", o.Property)
		}
		dir := " ASC"
		if o.Desc {
			dir = " DESC"
		}
		parts[i] = jqlFieldRef(f.Clause) + dir
	}
	return strings.Join(parts, ", "), nil
}
