package odata

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Op is an operator of a $filter expression.
type Op string

// Operators Ferry parses. Comparisons take a property and a literal; In takes
// a property and a list of literals; the string functions take a String
// property and a string literal; And/Or/Not take sub-expressions.
const (
	OpEq         Op = "eq"
	OpNe         Op = "ne"
	OpGt         Op = "gt"
	OpGe         Op = "ge"
	OpLt         Op = "lt"
	OpLe         Op = "le"
	OpIn         Op = "in"
	OpAnd        Op = "and"
	OpOr         Op = "or"
	OpNot        Op = "not"
	OpContains   Op = "contains"
	OpStartsWith Op = "startswith"
	OpEndsWith   Op = "endswith"
)

// Expr is a type-checked $filter expression.
type Expr struct {
	Op          Op
	Left, Right *Expr     // And, Or: both; Not: Left
	Property    string    // comparisons, In, functions
	Value       Literal   // comparisons, functions
	List        []Literal // In

	notNull bool // the property is not nullable, so JQL needs no "OR IS EMPTY"
}

// Literal is a typed constant from a $filter.
type Literal struct {
	Type EdmType   // the literal's own type; "" for null. Integers are EdmInt64, other numbers EdmDecimal.
	Str  string    // EdmString: the unescaped text
	Num  string    // EdmInt64, EdmDecimal: as written, e.g. "-12" or "3.50"
	Bool bool      // EdmBoolean
	Time time.Time // EdmDate (midnight UTC), EdmDateTimeOffset (with its offset)
}

// IsNull reports whether l is the null literal.
func (l Literal) IsNull() bool { return l.Type == "" }

// String returns l in OData URL syntax.
func (l Literal) String() string {
	switch l.Type {
	case "":
		return "null"
	case EdmString:
		return "'" + strings.ReplaceAll(l.Str, "'", "''") + "'"
	case EdmInt64, EdmDecimal:
		return l.Num
	case EdmBoolean:
		return strconv.FormatBool(l.Bool)
	case EdmDate:
		return l.Time.Format(time.DateOnly)
	case EdmDateTimeOffset:
		return l.Time.Format(time.RFC3339Nano)
	}
	return "null"
}

// String returns e in canonical OData syntax (fully parenthesised), which
// ParseFilter reads back to the same expression. A nil Expr is "".
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Expr) write(b *strings.Builder) {
	switch e.Op {
	case OpAnd, OpOr:
		b.WriteByte('(')
		e.Left.write(b)
		b.WriteString(" " + string(e.Op) + " ")
		e.Right.write(b)
		b.WriteByte(')')
	case OpNot:
		// Always parenthesised: "not A eq 1" reads differently under the
		// ABNF and under the precedence table.
		b.WriteString("not ")
		if e.Left.Op == OpAnd || e.Left.Op == OpOr {
			e.Left.write(b)
			return
		}
		b.WriteByte('(')
		e.Left.write(b)
		b.WriteByte(')')
	case OpIn:
		b.WriteString(e.Property + " in (")
		for i, l := range e.List {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.String())
		}
		b.WriteByte(')')
	case OpContains, OpStartsWith, OpEndsWith:
		b.WriteString(string(e.Op) + "(" + e.Property + "," + e.Value.String() + ")")
	default:
		b.WriteString(e.Property + " " + string(e.Op) + " " + e.Value.String())
	}
}

// Limits that keep a hostile $filter cheap to reject.
const (
	maxFilterLen   = 16 << 10
	maxFilterDepth = 64
	maxInList      = 1000
)

// ParseFilter parses and type-checks a $filter value (already
// percent-decoded) against set. Unknown properties and literals of the wrong
// type are 400s naming them; valid OData that Ferry does not support
// (arithmetic, lambdas, most functions, property-to-property comparison) is
// 501.
func ParseFilter(s string, set EntitySet) (*Expr, error) {
	if len(s) > maxFilterLen {
		return nil, badRequest("$filter", "$filter is longer than %d bytes", maxFilterLen)
	}
	if !utf8.ValidString(s) {
		return nil, badRequest("$filter", "$filter is not valid UTF-8")
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, set: set}
	e, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, badRequest("$filter", "$filter: unexpected %q at position %d", t.text, t.pos+1)
	}
	return e, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // tString: unescaped content
	pos  int
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'':
			var b strings.Builder
			j, closed := i+1, false
			for j < len(s) {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' { // '' is an escaped quote
						b.WriteByte('\'')
						j += 2
						continue
					}
					closed = true
					break
				}
				b.WriteByte(s[j])
				j++
			}
			if !closed {
				return nil, badRequest("$filter", "$filter: unterminated string starting at position %d", i+1)
			}
			toks = append(toks, token{tString, b.String(), i})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t(),'", rune(s[j])) {
				j++
			}
			if j < len(s) && s[j] == '\'' {
				// duration'P1D', guid'…', binary'…' and enum literals.
				return nil, notImplemented("$filter", "$filter: typed literal %s'…' is not supported", s[i:j])
			}
			if reDateTimeNoOffset.MatchString(s[i:j]) && reSpacedOffset.MatchString(s[j:]) {
				// "2024-01-31T10:00:00+01:00" sent with a raw "+", which a
				// query string reads as a space.
				return nil, badRequest("$filter", "$filter: %s is followed by a space: in a URL a '+' means a space, so write the offset's plus sign as %%2B", s[i:j])
			}
			toks = append(toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	return append(toks, token{kind: tEOF, pos: len(s)}), nil
}

type parser struct {
	toks []token
	i    int
	set  EntitySet
}

func (p *parser) peek() token { return p.toks[p.i] }

// next consumes a token; at the end it keeps returning EOF.
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// keyword reports whether t is the keyword kw. Keywords are matched
// case-insensitively (lenient, as OData 4.01 is about option names), unless
// the word names a property of the set, which then wins.
func (p *parser) keyword(t token, kw string) bool {
	if t.kind != tWord || !strings.EqualFold(t.text, kw) {
		return false
	}
	if t.text == kw {
		return true
	}
	_, isProp := p.set.Property(t.text)
	return !isProp
}

func (p *parser) parseOr(depth int) (*Expr, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword(p.peek(), "or") {
		p.next()
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &Expr{Op: OpOr, Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) parseAnd(depth int) (*Expr, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword(p.peek(), "and") {
		p.next()
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		l = &Expr{Op: OpAnd, Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) parseUnary(depth int) (*Expr, error) {
	if depth > maxFilterDepth {
		return nil, badRequest("$filter", "$filter is nested more than %d levels deep", maxFilterDepth)
	}
	t := p.peek()
	if p.keyword(t, "not") {
		p.next()
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpNot, Left: x}, nil
	}
	if t.kind == tLParen {
		p.next()
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, badRequest("$filter", "$filter: expected ) at position %d", c.pos+1)
		}
		if op := p.peek(); op.kind == tWord && isOperatorWord(op.text) {
			return nil, notImplemented("$filter", "$filter: comparing a parenthesised expression is not supported")
		}
		return x, nil
	}
	return p.parsePredicate()
}

var comparisons = map[string]Op{"eq": OpEq, "ne": OpNe, "gt": OpGt, "ge": OpGe, "lt": OpLt, "le": OpLe}

var arithmetic = map[string]bool{"add": true, "sub": true, "mul": true, "div": true, "divby": true, "mod": true, "has": true}

func isOperatorWord(w string) bool {
	w = strings.ToLower(w)
	_, cmp := comparisons[w]
	return cmp || arithmetic[w] || w == "in"
}

// The canonical functions of OData 4.01, so that a known but unsupported
// function is a 501 and a misspelt one a 400.
var canonicalFunctions = map[string]bool{
	"concat": true, "contains": true, "endswith": true, "indexof": true, "length": true, "startswith": true,
	"substring": true, "matchespattern": true, "tolower": true, "toupper": true, "trim": true,
	"hassubset": true, "hassubsequence": true, "date": true, "day": true, "fractionalseconds": true,
	"hour": true, "maxdatetime": true, "mindatetime": true, "minute": true, "month": true, "now": true,
	"second": true, "time": true, "totaloffsetminutes": true, "totalseconds": true, "year": true,
	"ceiling": true, "floor": true, "round": true, "cast": true, "isof": true, "case": true,
}

func (p *parser) parsePredicate() (*Expr, error) {
	t := p.next()
	switch t.kind {
	case tEOF:
		return nil, badRequest("$filter", "$filter: expression expected at end of input")
	case tWord:
	case tString:
		// 'x' eq Prop: put the property first.
		return p.flipped(literalToken(t))
	default:
		return nil, badRequest("$filter", "$filter: unexpected %q at position %d", t.text, t.pos+1)
	}
	if p.peek().kind == tLParen {
		return p.parseFunction(t)
	}
	if lit, ok, err := p.literalWord(t); err != nil {
		return nil, err
	} else if ok {
		return p.flipped(lit)
	}
	prop, err := p.property(t)
	if err != nil {
		return nil, err
	}
	op := p.peek()
	if op.kind != tWord || !isOperatorWord(op.text) {
		// A bare Boolean property means "Prop eq true".
		if prop.Type == EdmBoolean && !prop.Collection {
			return &Expr{Op: OpEq, Property: prop.Name, Value: Literal{Type: EdmBoolean, Bool: true}, notNull: !prop.Nullable}, nil
		}
		if op.kind == tEOF {
			return nil, badRequest("$filter", "$filter: operator expected after %s", prop.Name)
		}
		return nil, badRequest("$filter", "$filter: operator expected after %s, got %q", prop.Name, op.text)
	}
	p.next()
	w := strings.ToLower(op.text)
	if arithmetic[w] {
		return nil, notImplemented("$filter", "$filter: operator %s is not supported", w)
	}
	if prop.Collection {
		return nil, typeMismatch(prop.Name, "$filter: %s is a collection; compare its items with any/all, which Ferry does not support", prop.Name)
	}
	if w == "in" {
		list, err := p.literalList(prop)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpIn, Property: prop.Name, List: list, notNull: !prop.Nullable}, nil
	}
	lit, err := p.operandLiteral()
	if err != nil {
		return nil, err
	}
	cmp := comparisons[w]
	if err := checkComparison(prop, cmp, lit); err != nil {
		return nil, err
	}
	return &Expr{Op: cmp, Property: prop.Name, Value: lit, notNull: !prop.Nullable}, nil
}

// flipped handles "literal op Property".
func (p *parser) flipped(lit Literal) (*Expr, error) {
	op := p.next()
	if op.kind != tWord || !isOperatorWord(op.text) {
		return nil, badRequest("$filter", "$filter: a literal must be compared with a property")
	}
	w := strings.ToLower(op.text)
	cmp, ok := comparisons[w]
	if !ok {
		return nil, notImplemented("$filter", "$filter: operator %s with a literal on the left is not supported", w)
	}
	t := p.next()
	if t.kind != tWord {
		return nil, notImplemented("$filter", "$filter: comparing two literals is not supported")
	}
	if p.peek().kind == tLParen {
		return nil, notImplemented("$filter", "$filter: comparing with a function result is not supported")
	}
	if _, isLit, err := p.literalWord(t); err != nil {
		return nil, err
	} else if isLit {
		return nil, notImplemented("$filter", "$filter: comparing two literals is not supported")
	}
	prop, err := p.property(t)
	if err != nil {
		return nil, err
	}
	if prop.Collection {
		return nil, typeMismatch(prop.Name, "$filter: %s is a collection; compare its items with any/all, which Ferry does not support", prop.Name)
	}
	cmp = map[Op]Op{OpEq: OpEq, OpNe: OpNe, OpGt: OpLt, OpGe: OpLe, OpLt: OpGt, OpLe: OpGe}[cmp]
	if err := checkComparison(prop, cmp, lit); err != nil {
		return nil, err
	}
	return &Expr{Op: cmp, Property: prop.Name, Value: lit, notNull: !prop.Nullable}, nil
}

func (p *parser) parseFunction(name token) (*Expr, error) {
	fn := strings.ToLower(name.text)
	switch {
	case fn == "contains" || fn == "startswith" || fn == "endswith":
	case canonicalFunctions[fn]:
		return nil, notImplemented("$filter", "$filter: function %s is not supported", fn)
	case strings.Contains(name.text, "/"):
		return nil, p.pathError(name)
	case strings.Contains(name.text, "."):
		return nil, notImplemented("$filter", "$filter: function %s is not supported", name.text)
	default:
		return nil, badRequest("$filter", "$filter: unknown function %s", name.text)
	}
	p.next() // (
	pt := p.next()
	if pt.kind != tWord {
		return nil, notImplemented("$filter", "$filter: %s: the first argument must be a property", fn)
	}
	prop, err := p.property(pt)
	if err != nil {
		return nil, err
	}
	if prop.Type != EdmString || prop.Collection {
		return nil, typeMismatch(prop.Name, "$filter: %s needs a String property; %s is %s", fn, prop.Name, typeName(prop))
	}
	if c := p.next(); c.kind != tComma {
		return nil, badRequest("$filter", "$filter: %s takes two arguments", fn)
	}
	at := p.next()
	if at.kind != tString {
		if at.kind == tWord {
			if _, isProp := p.set.Property(at.text); isProp {
				return nil, notImplemented("$filter", "$filter: %s of two properties is not supported", fn)
			}
		}
		return nil, typeMismatch(prop.Name, "$filter: %s needs a string literal as its second argument", fn)
	}
	if c := p.next(); c.kind != tRParen {
		return nil, badRequest("$filter", "$filter: %s takes two arguments", fn)
	}
	e := &Expr{Op: Op(fn), Property: prop.Name, Value: literalToken(at)}
	// contains(P,'x') eq true / ne false and the like.
	if op := p.peek(); op.kind == tWord && isOperatorWord(op.text) {
		w := strings.ToLower(op.text)
		p.next()
		b := p.next()
		isTrue, isFalse := p.keyword(b, "true"), p.keyword(b, "false")
		if (w != "eq" && w != "ne") || !isTrue && !isFalse {
			return nil, notImplemented("$filter", "$filter: %s can only be compared with eq/ne true/false", fn)
		}
		if (w == "eq") != isTrue {
			e = &Expr{Op: OpNot, Left: e}
		}
	}
	return e, nil
}

func literalToken(t token) Literal { return Literal{Type: EdmString, Str: t.text} }

func (p *parser) pathError(t token) error {
	head, rest, _ := strings.Cut(t.text, "/")
	if _, ok := p.set.Property(head); !ok {
		return unknownProperty("$filter", head)
	}
	if r := strings.ToLower(rest); r == "any" || r == "all" {
		return notImplemented("$filter", "$filter: lambda operator %s is not supported", r)
	}
	return badRequest("$filter", "$filter: %s is a primitive property and has no member %q", head, rest)
}

func (p *parser) property(t token) (Property, error) {
	switch {
	case strings.HasPrefix(t.text, "@"):
		return Property{}, notImplemented("$filter", "$filter: parameter aliases are not supported")
	case strings.HasPrefix(t.text, "$"):
		return Property{}, notImplemented("$filter", "$filter: %s is not supported", t.text)
	case strings.Contains(t.text, "/"):
		return Property{}, p.pathError(t)
	}
	prop, ok := p.set.Property(t.text)
	if !ok {
		if !ValidIdentifier(t.text) {
			return Property{}, badRequest("$filter", "$filter: unexpected %q at position %d", t.text, t.pos+1)
		}
		return Property{}, unknownProperty("$filter", t.text)
	}
	return prop, nil
}

func (p *parser) operandLiteral() (Literal, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return literalToken(t), nil
	case tWord:
		if p.peek().kind == tLParen {
			return Literal{}, notImplemented("$filter", "$filter: comparing with a function result is not supported")
		}
		lit, ok, err := p.literalWord(t)
		if err != nil {
			return Literal{}, err
		}
		if ok {
			return lit, nil
		}
		if _, isProp := p.set.Property(t.text); isProp {
			return Literal{}, notImplemented("$filter", "$filter: comparing two properties is not supported")
		}
		if _, err := p.property(t); err != nil {
			return Literal{}, err
		}
	case tEOF:
		return Literal{}, badRequest("$filter", "$filter: value expected at end of input")
	}
	return Literal{}, badRequest("$filter", "$filter: value expected at position %d, got %q", t.pos+1, t.text)
}

func (p *parser) literalList(prop Property) ([]Literal, error) {
	if t := p.next(); t.kind != tLParen {
		return nil, badRequest("$filter", "$filter: in needs a parenthesised list")
	}
	var list []Literal
	for {
		lit, err := p.operandLiteral()
		if err != nil {
			return nil, err
		}
		if err := checkComparison(prop, OpIn, lit); err != nil {
			return nil, err
		}
		if list = append(list, lit); len(list) > maxInList {
			return nil, badRequest("$filter", "$filter: in-list longer than %d", maxInList)
		}
		switch t := p.next(); t.kind {
		case tComma:
			continue
		case tRParen:
			return list, nil
		default:
			return nil, badRequest("$filter", "$filter: expected , or ) in the in-list at position %d", t.pos+1)
		}
	}
}

var (
	reInt              = regexp.MustCompile(`^[+-]?[0-9]+$`)
	reDecimal          = regexp.MustCompile(`^[+-]?[0-9]+\.[0-9]+$`)
	reExponent         = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+$`)
	reDate             = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	reDateTimeNoOffset = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?$`)
	reSpacedOffset     = regexp.MustCompile(`^ [0-9]{2}:[0-9]{2}`)
	reDateTime         = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?(Z|[+-][0-9]{2}:[0-9]{2})$`)
)

// literalWord classifies a bare word as a literal. ok is false for words
// that are not literals (properties and anything else).
func (p *parser) literalWord(t token) (lit Literal, ok bool, err error) {
	w := t.text
	switch {
	case p.keyword(t, "null"):
		return Literal{}, true, nil
	case p.keyword(t, "true"), p.keyword(t, "false"):
		return Literal{Type: EdmBoolean, Bool: strings.EqualFold(w, "true")}, true, nil
	case reInt.MatchString(w):
		n := strings.TrimPrefix(w, "+")
		if _, err := strconv.ParseInt(n, 10, 64); err != nil {
			return Literal{}, false, badRequest("$filter", "$filter: integer %s is out of range", w)
		}
		return Literal{Type: EdmInt64, Num: n}, true, nil
	case reDecimal.MatchString(w):
		return Literal{Type: EdmDecimal, Num: strings.TrimPrefix(w, "+")}, true, nil
	case reExponent.MatchString(w), w == "INF", w == "-INF", w == "NaN":
		return Literal{}, false, notImplemented("$filter", "$filter: floating-point literal %s is not supported", w)
	case reDate.MatchString(w):
		d, err := time.Parse(time.DateOnly, w)
		if err != nil {
			return Literal{}, false, badRequest("$filter", "$filter: invalid date %s", w)
		}
		return Literal{Type: EdmDate, Time: d}, true, nil
	case reDateTime.MatchString(w):
		ts, err := time.Parse(time.RFC3339Nano, w)
		if err != nil { // seconds are optional in OData
			ts, err = time.Parse("2006-01-02T15:04Z07:00", w)
		}
		if err != nil {
			return Literal{}, false, badRequest("$filter", "$filter: invalid date-time %s", w)
		}
		return Literal{Type: EdmDateTimeOffset, Time: ts}, true, nil
	case len(w) > 0 && (w[0] >= '0' && w[0] <= '9' || w[0] == '-' || w[0] == '+'):
		return Literal{}, false, badRequest("$filter", "$filter: invalid literal %s", w)
	}
	return Literal{}, false, nil
}

// checkComparison type-checks "prop op lit".
func checkComparison(prop Property, op Op, lit Literal) error {
	if lit.IsNull() {
		if op != OpEq && op != OpNe {
			return notImplemented(prop.Name, "$filter: null can only be compared with eq or ne")
		}
		return nil
	}
	ok := false
	switch prop.Type {
	case EdmString:
		ok = lit.Type == EdmString
	case EdmInt64:
		ok = lit.Type == EdmInt64
		if lit.Type == EdmDecimal {
			// Comparing an integer property with a fraction is valid
			// OData, but JQL number fields would read it differently.
			return notImplemented(prop.Name, "$filter: %s is an integer; compare it with an integer", prop.Name)
		}
	case EdmDecimal:
		ok = lit.Type == EdmInt64 || lit.Type == EdmDecimal
	case EdmBoolean:
		ok = lit.Type == EdmBoolean
	case EdmDate:
		ok = lit.Type == EdmDate
	case EdmDateTimeOffset:
		ok = lit.Type == EdmDateTimeOffset
	}
	if !ok {
		return typeMismatch(prop.Name, "$filter: %s is %s and cannot be compared with %s", prop.Name, typeName(prop), describeLiteral(lit))
	}
	return nil
}

func typeName(p Property) string {
	if p.Collection {
		return "Collection(" + string(p.Type) + ")"
	}
	return string(p.Type)
}

func describeLiteral(l Literal) string {
	switch l.Type {
	case EdmString:
		return "a string"
	case EdmInt64, EdmDecimal:
		return "the number " + l.Num
	case EdmBoolean:
		return "a boolean"
	case EdmDate:
		return "the date " + l.String() + " (use a date-time such as " + l.Time.Format(time.DateOnly) + "T00:00:00Z for Edm.DateTimeOffset)"
	case EdmDateTimeOffset:
		return "the date-time " + l.String()
	}
	return "null"
}
