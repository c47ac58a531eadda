package odata

import (
	"encoding/json"
	"math/big"
	"strings"
	"time"
)

// Match evaluates e on one row with OData's meaning: strings compare
// exactly and case-sensitively (code point order for gt/lt), numbers by
// value, date-times as instants, dates as calendar days. A comparison with
// a null value is false, except ne (true unless both are null) and eq null.
// get returns a property's value in the Go types Row documents (string,
// integers, json.Number, bool, time.Time, a "2006-01-02" string for dates,
// []string for collections, nil for null). A nil Expr matches every row.
//
// The feeds use it to keep exactly the matching rows of a wider JQL search
// (see Fold), one row at a time as they stream by.
func (e *Expr) Match(get func(property string) any) bool {
	if e == nil {
		return true
	}
	switch e.Op {
	case OpAnd:
		return e.Left.Match(get) && e.Right.Match(get)
	case OpOr:
		return e.Left.Match(get) || e.Right.Match(get)
	case OpNot:
		return !e.Left.Match(get)
	case OpContains, OpStartsWith, OpEndsWith:
		s, ok := get(e.Property).(string)
		if !ok {
			return false
		}
		switch e.Op {
		case OpContains:
			return strings.Contains(s, e.Value.Str)
		case OpStartsWith:
			return strings.HasPrefix(s, e.Value.Str)
		}
		return strings.HasSuffix(s, e.Value.Str)
	case OpIn:
		v := get(e.Property)
		for _, l := range e.List {
			if c, ok := compare(v, l); ok && c == 0 || v == nil && l.IsNull() {
				return true
			}
		}
		return false
	}
	v := get(e.Property)
	if e.Value.IsNull() || v == nil {
		null := v == nil && e.Value.IsNull()
		switch e.Op {
		case OpEq:
			return null
		case OpNe:
			return !null
		}
		return false
	}
	c, ok := compare(v, e.Value)
	if !ok {
		return e.Op == OpNe // values of different kinds are never equal
	}
	switch e.Op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	}
	return false
}

// compare orders a row value against a literal; ok is false when they are
// not comparable (a null, or a value of another kind).
func compare(v any, l Literal) (int, bool) {
	if v == nil || l.IsNull() {
		return 0, false
	}
	switch l.Type {
	case EdmString:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(s, l.Str), true
	case EdmInt64, EdmDecimal:
		a, ok := ratOf(v)
		b, okb := new(big.Rat).SetString(l.Num)
		if !ok || !okb {
			return 0, false
		}
		return a.Cmp(b), true
	case EdmBoolean:
		b, ok := v.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case b == l.Bool:
			return 0, true
		case b:
			return 1, true
		}
		return -1, true
	case EdmDate:
		var day string
		switch x := v.(type) {
		case string:
			day = x
		case time.Time:
			day = x.Format(time.DateOnly)
		default:
			return 0, false
		}
		return strings.Compare(day, l.Time.Format(time.DateOnly)), true
	case EdmDateTimeOffset:
		t, ok := v.(time.Time)
		if !ok {
			return 0, false
		}
		// What the client sees: milliseconds, as written (Precision="3").
		return t.Truncate(time.Millisecond).Compare(l.Time), true
	}
	return 0, false
}

func ratOf(v any) (*big.Rat, bool) {
	if n, ok := toInt64(v); ok {
		return new(big.Rat).SetInt64(n), true
	}
	switch x := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case *big.Rat:
		return x, x != nil
	case string:
		return new(big.Rat).SetString(x)
	}
	return nil, false
}
