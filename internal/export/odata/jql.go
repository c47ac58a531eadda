package odata

import (
	"regexp"
	"strings"
	"time"
)

// JQLField is how one OData property is searched in JQL.
type JQLField struct {
	Clause string // the JQL field: "key", "created", "status", "cf[10010]", or a field name (quoted when needed)
	// Text marks a Jira text field (summary, description, text custom
	// fields). JQL searches those only with ~, a stemmed word match, so no
	// OData comparison on them translates exactly: they answer 501.
	Text bool
}

// FieldMap tells JQL how to search an entity set.
type FieldMap struct {
	Fields map[string]JQLField // by OData property name; a property not here cannot be filtered (501)
	// Zone is the time zone of the Jira user the search runs as: JQL reads
	// "2024-01-31 10:00" in that zone. Required for DateTimeOffset filters.
	Zone *time.Location
}

// JQL translates e into a JQL clause (without ORDER BY). Whatever JQL
// cannot express with exactly OData's meaning is a 501 naming the property
// or operator, never an approximation:
//
//   - Strings: eq, ne and in. Not gt/lt (JQL orders names and keys its own
//     way), not contains/startswith/endswith (JQL has only ~ word search),
//     not the empty string (JQL has none) nor control characters.
//   - Int64, Decimal, Date: all comparisons and in.
//   - DateTimeOffset: all comparisons, with minute-aligned values only (JQL
//     has no seconds), converted into m.Zone.
//   - Boolean properties: none (Jira has no boolean field JQL can test).
//   - null: eq null is "IS EMPTY", ne null "IS NOT EMPTY".
//
// Negation is pushed down to the comparisons and never emitted as JQL NOT,
// and where OData counts a null value as a match (ne, not gt, …) the
// clause says "OR f IS EMPTY": JQL's != and NOT IN never match empty fields.
// A nil Expr (no $filter) is "".
func (e *Expr) JQL(m FieldMap) (string, error) {
	if e == nil {
		return "", nil
	}
	return e.jql(m, false)
}

func (e *Expr) jql(m FieldMap, neg bool) (string, error) {
	switch e.Op {
	case OpNot:
		return e.Left.jql(m, !neg)
	case OpAnd, OpOr:
		l, err := e.Left.jql(m, neg)
		if err != nil {
			return "", err
		}
		r, err := e.Right.jql(m, neg)
		if err != nil {
			return "", err
		}
		op := " AND "
		if (e.Op == OpOr) != neg { // De Morgan
			op = " OR "
		}
		return "(" + l + op + r + ")", nil
	case OpContains, OpStartsWith, OpEndsWith:
		return "", notImplemented(e.Property, "$filter: %s cannot be translated to JQL exactly (JQL matches words, not substrings)", e.Op)
	}
	return e.atom(m, neg)
}

// complement of a comparison under negation (null handling aside).
var complement = map[Op]Op{OpEq: OpNe, OpNe: OpEq, OpGt: OpLe, OpGe: OpLt, OpLt: OpGe, OpLe: OpGt}

var jqlOps = map[Op]string{OpEq: "=", OpNe: "!=", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<="}

func (e *Expr) atom(m FieldMap, neg bool) (string, error) {
	f, ok := m.Fields[e.Property]
	if !ok || f.Clause == "" {
		return "", notImplemented(e.Property, "$filter: %s cannot be filtered", e.Property)
	}
	if f.Text {
		return "", notImplemented(e.Property, "$filter: %s is a text field; JQL can only search it by words (~), not compare it", e.Property)
	}
	clause := jqlFieldRef(f.Clause)
	nullable := !e.notNull
	if e.Op == OpIn {
		vals := make([]string, len(e.List))
		for i, l := range e.List {
			if l.IsNull() {
				return "", notImplemented(e.Property, "$filter: null in an in-list is not supported")
			}
			v, err := jqlValue(e.Property, OpIn, l, m)
			if err != nil {
				return "", err
			}
			vals[i] = v
		}
		list := "(" + strings.Join(vals, ", ") + ")"
		if !neg {
			return clause + " IN " + list, nil
		}
		return orEmpty(clause+" NOT IN "+list, clause, nullable), nil
	}
	op := e.Op
	if neg {
		op = complement[op]
	}
	if e.Value.IsNull() {
		if op == OpEq {
			return clause + " IS EMPTY", nil
		}
		return clause + " IS NOT EMPTY", nil
	}
	v, err := jqlValue(e.Property, op, e.Value, m)
	if err != nil {
		return "", err
	}
	c := clause + " " + jqlOps[op] + " " + v
	// Which results include rows where the field is empty? In OData a null
	// value fails eq/gt/ge/lt/le and passes ne; its negation flips that.
	// Positive eq and the orderings never match empties in JQL either.
	nullMatches := op == OpNe || neg && op != OpEq && op != OpNe
	if nullMatches {
		return orEmpty(c, clause, nullable), nil
	}
	return c, nil
}

func orEmpty(c, clause string, nullable bool) string {
	if !nullable {
		return c
	}
	return "(" + c + " OR " + clause + " IS EMPTY)"
}

func jqlValue(prop string, op Op, l Literal, m FieldMap) (string, error) {
	switch l.Type {
	case EdmString:
		if op != OpEq && op != OpNe && op != OpIn {
			return "", notImplemented(prop, "$filter: %s: JQL cannot order strings as OData does", prop)
		}
		if l.Str == "" {
			return "", notImplemented(prop, "$filter: %s: JQL has no empty string; use eq null for an empty field", prop)
		}
		return jqlString(prop, l.Str)
	case EdmInt64, EdmDecimal:
		return l.Num, nil
	case EdmBoolean:
		return "", notImplemented(prop, "$filter: %s: JQL cannot test Boolean properties", prop)
	case EdmDate:
		return `"` + l.Time.Format(time.DateOnly) + `"`, nil
	case EdmDateTimeOffset:
		return jqlDateTime(prop, l.Time, m.Zone)
	}
	return "", internal("odata: literal of type %q", l.Type)
}

// jqlString quotes s as a JQL string: backslash and double quote are
// escaped, so the value can never end the string early. Control characters
// are refused rather than escaped, since JQL's escapes for them are not
// reliable across Jira versions.
func jqlString(prop, s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			return "", notImplemented(prop, "$filter: %s: control characters cannot be searched in JQL", prop)
		case r == '\\' || r == '"':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// jqlDateTime renders t as JQL's "yyyy-MM-dd HH:mm" in the user's zone. JQL
// has no seconds, so only minute-aligned instants translate exactly; and an
// instant whose wall-clock time is ambiguous in the zone (the repeated hour
// when clocks go back) is refused rather than guessed.
func jqlDateTime(prop string, t time.Time, zone *time.Location) (string, error) {
	if zone == nil {
		return "", internal("odata: FieldMap.Zone is not set; JQL reads date-times in the user's time zone")
	}
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return "", notImplemented(prop, "$filter: %s: JQL compares date-times to the minute; use a value with :00 seconds", prop)
	}
	local := t.In(zone)
	wall := local.Format("2006-01-02 15:04")
	// When clocks go back, an hour of wall-clock times happens twice; JQL
	// would pick one of the two instants. Refuse both rather than guess.
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		if t.Add(d).In(zone).Format("2006-01-02 15:04") == wall {
			return "", notImplemented(prop, "$filter: %s: %s is ambiguous in the Jira user's time zone", prop, t.Format(time.RFC3339))
		}
	}
	return `"` + wall + `"`, nil
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
	q, _ := jqlString("", clean) // cannot fail: control characters are gone
	return q
}

// JQL words that cannot be bare field names.
var jqlReserved = map[string]bool{
	"and": true, "or": true, "not": true, "empty": true, "null": true, "order": true, "by": true,
	"asc": true, "desc": true, "in": true, "is": true, "was": true, "changed": true,
}

// JQLOrderBy translates $orderby into a JQL "ORDER BY …" clause ("" for
// none). A nullable property is refused: JQL puts empty values last, OData
// first.
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
		if !ok || f.Clause == "" || f.Text {
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
	return "ORDER BY " + strings.Join(parts, ", "), nil
}
