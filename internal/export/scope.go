package export

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A site's administrators may name the only projects any feed exports
// (Settings.Projects). Ferry then runs every data source's JQL as
//
//	(condition) AND project in (id, …) ORDER BY order
//
// so that whatever the condition says — "project = A OR project = B", a
// JQL function, an ORDER BY, quotes — Jira returns issues of those projects
// only. That holds only if Ferry finds the condition's end exactly where
// Jira does: a quote Ferry thinks closed, or a parenthesis it miscounts,
// would put the restriction inside a string or inside an OR. So the JQL is
// split by a lexer that follows Jira's rules for strings, and anything it
// is not certain of is refused rather than guessed at: an unterminated
// string, unbalanced parentheses, a backslash outside quotes (Jira reads
// one there as an escape, other JQL readers do not), ORDER BY anywhere but
// once at the top level, parentheses in the ORDER BY part.

// jqlWord is a bare word of a JQL query and where it starts.
type jqlWord struct {
	text  string
	at    int
	depth int
}

// errScope explains why a query cannot be restricted.
type errScope struct{ reason string }

func (e *errScope) Error() string { return e.reason }

// lexScope reads jql as Jira's lexer would for what matters here: quoted
// strings (double or single quotes, a backslash escaping the next
// character), parentheses, and bare words with their depth. strict refuses
// a backslash outside quotes; otherwise it escapes the next character there
// too, as in Jira.
func lexScope(jql string, strict bool) ([]jqlWord, error) {
	var words []jqlWord
	depth := 0
	for i := 0; i < len(jql); {
		c := jql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for ; j < len(jql) && jql[j] != c; j++ {
				if jql[j] == '\\' {
					j++ // the escaped character, whatever it is
				}
			}
			if j >= len(jql) {
				return nil, &errScope{"a quoted string is not closed"}
			}
			i = j + 1
		case c == '\\' && strict:
			return nil, &errScope{"a backslash outside quotes (put text with backslashes in quotes)"}
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, &errScope{"a closing parenthesis has no opening one"}
			}
			i++
		case strings.IndexByte(",=!<>~", c) >= 0:
			i++
		default:
			j := i
			for j < len(jql) && strings.IndexByte(" \t\n\r\"'(),=!<>~", jql[j]) < 0 {
				if strict && oddSpace(jql[j:]) {
					return nil, &errScope{"a control character or unusual space outside quotes"}
				}
				if jql[j] == '\\' {
					if strict {
						return nil, &errScope{"a backslash outside quotes (put text with backslashes in quotes)"}
					}
					j++ // an escaped character is part of the word
				}
				j++
			}
			j = min(j, len(jql))
			words = append(words, jqlWord{text: jql[i:j], at: i, depth: depth})
			i = j
		}
	}
	if depth != 0 {
		return nil, &errScope{"a parenthesis is not closed"}
	}
	return words, nil
}

// oddSpace reports whether s starts with a control character or a space
// other than the four JQL surely skips: another reader might split a word
// there.
func oddSpace(s string) bool {
	if c := s[0]; c < 0x20 || c == 0x7f {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r != utf8.RuneError && unicode.IsSpace(r) || r == '\ufeff'
}

// jqlSpace is what JQL surely skips between words.
const jqlSpace = " \t\n\r"

// scopeSplit separates a query's condition from its ORDER BY part, exactly
// where Jira would, or says why it cannot be sure (strict: see lexScope).
func scopeSplit(jql string, strict bool) (where, order string, err error) {
	words, err := lexScope(jql, strict)
	if err != nil {
		return "", "", err
	}
	cut := -1
	for k, w := range words {
		if !strings.EqualFold(w.text, "order") {
			continue
		}
		if w.depth != 0 || k+1 == len(words) || !strings.EqualFold(words[k+1].text, "by") || words[k+1].depth != 0 ||
			strings.Trim(jql[w.at+len(w.text):words[k+1].at], jqlSpace) != "" {
			return "", "", &errScope{"ORDER appears other than as one ORDER BY at the end"}
		}
		if cut >= 0 {
			return "", "", &errScope{"ORDER BY appears twice"}
		}
		cut = k
	}
	if cut < 0 {
		return strings.Trim(jql, jqlSpace), "", nil
	}
	by := words[cut+1]
	order = strings.Trim(jql[by.at+len(by.text):], jqlSpace)
	if strings.ContainsAny(order, "()") {
		return "", "", &errScope{"parentheses after ORDER BY"}
	}
	return strings.Trim(jql[:words[cut].at], jqlSpace), order, nil
}

// RestrictJQL limits jql to the projects with the given ids (digits only,
// at least one).
func RestrictJQL(jql string, projectIDs []string) (string, error) {
	if len(projectIDs) == 0 {
		return "", errors.New("RestrictJQL: no projects")
	}
	for _, id := range projectIDs {
		if id == "" || strings.Trim(id, "0123456789") != "" {
			return "", errors.New("RestrictJQL: a project id is not a number")
		}
	}
	where, order, err := scopeSplit(jql, true)
	if err != nil {
		return "", err
	}
	q := "project in (" + strings.Join(projectIDs, ", ") + ")"
	if where != "" {
		q = "(" + where + ") AND " + q
	}
	if order != "" {
		q += " ORDER BY " + order
	}
	return q, nil
}
