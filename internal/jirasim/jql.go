package jirasim

import (
	"fmt"
	"strings"
)

// A small JQL front end: tokenizer, recursive-descent parser producing an
// AST, then a compile step (jql_eval.go) that resolves values against the
// site and the caller's permissions. Messages follow Jira's wording so
// clients that surface them read the same against the simulator.

type jqlTokKind int

const (
	tkEOF jqlTokKind = iota
	tkWord
	tkString
	tkOp
	tkLParen
	tkRParen
	tkComma
)

type jqlTok struct {
	kind jqlTokKind
	text string
	line int
	col  int
}

func (t jqlTok) where() string { return fmt.Sprintf("(line %d, character %d)", t.line, t.col) }

func (t jqlTok) is(word string) bool { return t.kind == tkWord && strings.EqualFold(t.text, word) }

// JQLError is a query the simulator refuses, with Jira's message.
type JQLError struct{ Msg string }

func (e *JQLError) Error() string { return e.Msg }

func syntaxErr(format string, args ...any) error {
	return &JQLError{"Error in the JQL Query: " + fmt.Sprintf(format, args...)}
}

var reservedWords = map[string]bool{"and": true, "or": true, "not": true, "in": true, "is": true, "order": true, "by": true, "empty": true, "null": true}

func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '=', '!', '<', '>', '~', '(', ')', ',', '"', '\'':
		return false
	}
	return true
}

func lexJQL(src string) ([]jqlTok, error) {
	var toks []jqlTok
	line, lineStart := 1, 0
	i := 0
	for i < len(src) {
		c := src[i]
		col := i - lineStart + 1
		switch {
		case c == '\n':
			line++
			i++
			lineStart = i
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, jqlTok{tkLParen, "(", line, col})
			i++
		case c == ')':
			toks = append(toks, jqlTok{tkRParen, ")", line, col})
			i++
		case c == ',':
			toks = append(toks, jqlTok{tkComma, ",", line, col})
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(src) {
				if src[j] == '\\' && j+1 < len(src) {
					b.WriteByte(src[j+1])
					j += 2
					continue
				}
				if src[j] == c {
					closed = true
					break
				}
				if src[j] == '\n' {
					line++
					lineStart = j + 1
				}
				b.WriteByte(src[j])
				j++
			}
			if !closed {
				return nil, syntaxErr("The quoted string '%s' has not been completed. (line %d, character %d)", b.String(), line, col)
			}
			toks = append(toks, jqlTok{tkString, b.String(), line, col})
			i = j + 1
		case c == '=' || c == '~':
			toks = append(toks, jqlTok{tkOp, string(c), line, col})
			i++
		case c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(src) && (src[i+1] == '=' || c == '!' && src[i+1] == '~') {
				op += string(src[i+1])
			}
			if op == "!" {
				return nil, syntaxErr("Expecting operator but got '!'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line %d, character %d)", line, col)
			}
			toks = append(toks, jqlTok{tkOp, op, line, col})
			i += len(op)
		default:
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, jqlTok{tkWord, src[i:j], line, col})
			i = j
		}
	}
	toks = append(toks, jqlTok{kind: tkEOF, line: line, col: len(src) - lineStart + 1})
	return toks, nil
}

type jqlNode interface{ jqlNode() }

type jqlAnd struct{ L, R jqlNode }
type jqlOr struct{ L, R jqlNode }
type jqlNot struct{ X jqlNode }

type jqlValue struct {
	Text string
	Tok  jqlTok
}

type jqlClause struct {
	Field  string // as written
	Op     string // "=", "!=", "<", "<=", ">", ">=", "~", "!~", "in", "not in", "is", "is not"
	Values []jqlValue
	Tok    jqlTok
}

func (jqlAnd) jqlNode()     {}
func (jqlOr) jqlNode()      {}
func (jqlNot) jqlNode()     {}
func (*jqlClause) jqlNode() {}

type jqlSort struct {
	Field string
	Desc  bool
}

type jqlQuery struct {
	Where jqlNode // nil: no restriction
	Order []jqlSort
}

type jqlParser struct {
	toks []jqlTok
	pos  int
}

func (p *jqlParser) peek() jqlTok { return p.toks[p.pos] }
func (p *jqlParser) next() jqlTok {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

// parseJQL parses the supported JQL subset into an AST.
func parseJQL(src string) (*jqlQuery, error) {
	toks, err := lexJQL(src)
	if err != nil {
		return nil, err
	}
	p := &jqlParser{toks: toks}
	q := &jqlQuery{}
	if t := p.peek(); t.kind != tkEOF && !t.is("order") {
		if q.Where, err = p.parseOr(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); t.is("order") {
		p.next()
		if by := p.next(); !by.is("by") {
			return nil, syntaxErr("Expecting 'BY' but got '%s'. %s", by.text, by.where())
		}
		if q.Order, err = p.parseOrder(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, syntaxErr("Expecting either 'OR' or 'AND' but got '%s'. %s", t.text, t.where())
	}
	return q, nil
}

func (p *jqlParser) parseOr() (jqlNode, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().is("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = jqlOr{l, r}
	}
	return l, nil
}

func (p *jqlParser) parseAnd() (jqlNode, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peek().is("and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = jqlAnd{l, r}
	}
	return l, nil
}

func (p *jqlParser) parseUnary() (jqlNode, error) {
	t := p.peek()
	switch {
	case t.is("not"):
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return jqlNot{x}, nil
	case t.kind == tkLParen:
		p.next()
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tkRParen {
			if c.kind == tkEOF {
				return nil, syntaxErr("Expecting ')' before the end of the query.")
			}
			return nil, syntaxErr("Expecting ')' but got '%s'. %s", c.text, c.where())
		}
		return x, nil
	}
	return p.parseClause()
}

func (p *jqlParser) parseClause() (jqlNode, error) {
	f := p.next()
	switch {
	case f.kind == tkEOF:
		return nil, syntaxErr("Expecting a field name at the end of the query.")
	case f.kind == tkWord && reservedWords[strings.ToLower(f.text)]:
		return nil, syntaxErr("'%s' is a reserved JQL word. You must surround it in quotation marks to use it in a query. %s", f.text, f.where())
	case f.kind != tkWord && f.kind != tkString:
		return nil, syntaxErr("Expecting a field name but got '%s'. %s", f.text, f.where())
	}
	c := &jqlClause{Field: f.text, Tok: f}
	o := p.next()
	switch {
	case o.kind == tkOp:
		c.Op = o.text
	case o.is("in"):
		c.Op = "in"
	case o.is("not"):
		if in := p.next(); !in.is("in") {
			return nil, syntaxErr("Expecting 'IN' after 'NOT' but got '%s'. %s", in.text, in.where())
		}
		c.Op = "not in"
	case o.is("is"):
		c.Op = "is"
		if p.peek().is("not") {
			p.next()
			c.Op = "is not"
		}
	case o.kind == tkEOF:
		return nil, syntaxErr("Expecting operator before the end of the query. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.")
	default:
		return nil, syntaxErr("Expecting operator but got '%s'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. %s", o.text, o.where())
	}
	if c.Op == "in" || c.Op == "not in" {
		if lp := p.next(); lp.kind != tkLParen {
			return nil, syntaxErr("Expecting '(' but got '%s'. %s", lp.text, lp.where())
		}
		for {
			v, err := p.parseValue()
			if err != nil {
				return nil, err
			}
			c.Values = append(c.Values, v)
			t := p.next()
			if t.kind == tkRParen {
				break
			}
			if t.kind == tkEOF {
				return nil, syntaxErr("Expecting ')' before the end of the query.")
			}
			if t.kind != tkComma {
				return nil, syntaxErr("Expecting ',' or ')' but got '%s'. %s", t.text, t.where())
			}
		}
		return c, nil
	}
	v, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	c.Values = []jqlValue{v}
	return c, nil
}

func (p *jqlParser) parseValue() (jqlValue, error) {
	t := p.next()
	switch t.kind {
	case tkString:
		return jqlValue{t.text, t}, nil
	case tkWord:
		if p.peek().kind == tkLParen {
			return jqlValue{}, &JQLError{fmt.Sprintf("Unable to find JQL function '%s()'.", t.text)}
		}
		if lw := strings.ToLower(t.text); reservedWords[lw] && lw != "empty" && lw != "null" {
			return jqlValue{}, syntaxErr("'%s' is a reserved JQL word. You must surround it in quotation marks to use it in a query. %s", t.text, t.where())
		}
		return jqlValue{t.text, t}, nil
	case tkEOF:
		return jqlValue{}, syntaxErr("Expecting either a value, list or function before the end of the query.")
	}
	return jqlValue{}, syntaxErr("Expecting either a value, list or function but got '%s'. You must surround '%s' in quotation marks to use it as a value. %s", t.text, t.text, t.where())
}

func (p *jqlParser) parseOrder() ([]jqlSort, error) {
	var out []jqlSort
	for {
		f := p.next()
		if f.kind != tkWord && f.kind != tkString {
			if f.kind == tkEOF {
				return nil, syntaxErr("Expecting a field name at the end of the query.")
			}
			return nil, syntaxErr("Expecting a field name but got '%s'. %s", f.text, f.where())
		}
		s := jqlSort{Field: f.text}
		if t := p.peek(); t.is("asc") || t.is("desc") {
			s.Desc = t.is("desc")
			p.next()
		}
		out = append(out, s)
		if p.peek().kind != tkComma {
			return out, nil
		}
		p.next()
	}
}
