package export

import (
	"strings"
	"testing"
)

// TestScopeSplitFindsTheConditionWhereJiraDoes: the ORDER BY is found only
// outside quotes (either kind, with escaped quotes inside) and
// parentheses; anything the lexer cannot be sure of is refused.
func TestScopeSplitFindsTheConditionWhereJiraDoes(t *testing.T) {
	for _, c := range []struct{ jql, where, order string }{
		{`project = A`, `project = A`, ``},
		{`project = A ORDER BY key`, `project = A`, `key`},
		{`project = A order  by created DESC, key`, `project = A`, `created DESC, key`},
		{"project = A\norder\tby key", `project = A`, `key`},
		{`ORDER BY key`, ``, `key`},
		{`summary ~ "x order by y"`, `summary ~ "x order by y"`, ``},
		{`summary ~ 'x order by y' ORDER BY key`, `summary ~ 'x order by y'`, `key`},
		{`summary ~ "a\" ORDER BY " OR project = B`, `summary ~ "a\" ORDER BY " OR project = B`, ``},
		{`summary ~ "a\\" ORDER BY key`, `summary ~ "a\\"`, `key`},
		{`summary ~ 'it\'s ORDER BY x' ORDER BY key`, `summary ~ 'it\'s ORDER BY x'`, `key`},
		{`summary ~ "it's" ORDER BY key`, `summary ~ "it's"`, `key`},
		{`(project = A OR project = B) ORDER BY "Story Points" ASC`, `(project = A OR project = B)`, `"Story Points" ASC`},
		{`labels = orderly ORDER BY key`, `labels = orderly`, `key`},
		{`cf[10010] = x ORDER BY cf[10010]`, `cf[10010] = x`, `cf[10010]`},
	} {
		where, order, err := scopeSplit(c.jql, true)
		if err != nil || where != c.where || order != c.order {
			t.Errorf("scopeSplit(%q) = %q, %q, %v; want %q, %q", c.jql, where, order, err, c.where, c.order)
		}
	}
	for _, jql := range []string{
		`summary ~ "not closed`,
		`summary ~ 'not closed\'`,
		`project = A) OR (project = B`,
		`(project = A`,
		`project = A)`,
		`summary ~ foo\"bar`,
		`(project = A ORDER BY key)`,
		`project = A ORDER BY key ORDER BY created`,
		`project = A ORDER key`,
		`project = A ORDER`,
		`project = A ORDER BY created) OR (project = B`,
		`project = A ORDER BY (created)`,
		`order = x`,
	} {
		if where, order, err := scopeSplit(jql, true); err == nil {
			t.Errorf("scopeSplit(%q) = %q, %q: want a refusal", jql, where, order)
		}
	}
}

func TestRestrictJQLPutsTheProjectsOutsideTheCondition(t *testing.T) {
	for _, c := range []struct{ jql, want string }{
		{`project = A OR project = B`, `(project = A OR project = B) AND project in (10000, 10001)`},
		{`project = A OR project = B ORDER BY key DESC`, `(project = A OR project = B) AND project in (10000, 10001) ORDER BY key DESC`},
		{`ORDER BY created`, `project in (10000, 10001) ORDER BY created`},
		{`summary ~ "x\" ORDER BY " OR project = C`, `(summary ~ "x\" ORDER BY " OR project = C) AND project in (10000, 10001)`},
	} {
		got, err := RestrictJQL(c.jql, []string{"10000", "10001"})
		if err != nil || got != c.want {
			t.Errorf("RestrictJQL(%q) = %q, %v; want %q", c.jql, got, err, c.want)
		}
	}
	for _, ids := range [][]string{nil, {""}, {"10000) OR (1=1"}, {"A"}} {
		if got, err := RestrictJQL("project = A", ids); err == nil {
			t.Errorf("RestrictJQL with ids %q = %q: want a refusal", ids, got)
		}
	}
}

// TestSplitOrderByNoLongerEndsStringsAtEscapedQuotes: a $filter folded into
// a source whose string holds an escaped quote and "order by" stays outside
// the string (the splitter used to end the string at the escaped quote).
func TestSplitOrderByNoLongerEndsStringsAtEscapedQuotes(t *testing.T) {
	got := combineJQL(`summary ~ "a\" order by b" ORDER BY key`, `status = Done`, "")
	if want := `(summary ~ "a\" order by b") AND (status = Done) ORDER BY key`; got != want {
		t.Errorf("combineJQL = %q, want %q", got, want)
	}
	// Outside quotes, a backslash escapes as in Jira.
	if w, o := splitOrderBy(`summary ~ foo\"bar ORDER BY key`); w != `summary ~ foo\"bar` || o != "key" {
		t.Errorf("splitOrderBy with an escape outside quotes = %q, %q", w, o)
	}
}

// depth0Words are the bare words of q outside every parenthesis.
func depth0Words(t *testing.T, q string) []string {
	t.Helper()
	words, err := lexScope(q, true)
	if err != nil {
		t.Fatalf("restricted query %q does not lex: %v", q, err)
	}
	var out []string
	for _, w := range words {
		if w.depth == 0 {
			out = append(out, strings.ToUpper(w.text))
		}
	}
	return out
}

// FuzzRestrictJQL: whatever the source says, a restriction Ferry accepts is
// at the top level of the query it builds — the only words outside
// parentheses are AND, project, in and an ORDER BY part — and lexing the
// result again finds the same condition.
func FuzzRestrictJQL(f *testing.F) {
	for _, s := range []string{
		`project = A OR project = B`, `project = A ORDER BY key`, `summary ~ "a\" ORDER BY " OR project = B`,
		`summary ~ 'x' OR summary ~ "y\\" ORDER BY created DESC`, `(a = b) OR (c = d)`, `project = A) OR (project = B`,
		`issue in linkedIssues("A-1") ORDER BY key`, `text ~ "\u0041 order by" order by key`, `ORDER BY key`, ``,
		`labels = "x" || labels = 'y'`, `NOT project = A`, "summary ~ \"line\nbreak\" ORDER BY key",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jql string) {
		q, err := RestrictJQL(jql, []string{"10000", "10001"})
		if err != nil {
			return
		}
		words := depth0Words(t, q)
		i := 0
		if strings.HasPrefix(q, "(") {
			if len(words) < 1 || words[0] != "AND" {
				t.Fatalf("restricted %q: top-level words %v do not start with AND", q, words)
			}
			i = 1
		}
		if len(words) < i+2 || words[i] != "PROJECT" || words[i+1] != "IN" {
			t.Fatalf("restricted %q: top-level words %v", q, words)
		}
		rest := words[i+2:]
		if len(rest) > 0 && (len(rest) < 2 || rest[0] != "ORDER" || rest[1] != "BY") {
			t.Fatalf("restricted %q: after the restriction %v", q, rest)
		}
		where, _, err := scopeSplit(q, true)
		if err != nil || !strings.HasSuffix(where, "project in (10000, 10001)") {
			t.Fatalf("restricted %q splits as %q, %v", q, where, err)
		}
	})
}
