package atlassian_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"ferry/internal/atlassian"
)

type qshVector struct {
	Name, Method, Path, BasePath, Query, Canonical, QSH string
}

func TestQSHKnownAnswers(t *testing.T) {
	b, err := os.ReadFile("testdata/qsh_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []qshVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 4 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		if got := atlassian.CanonicalRequest(v.Method, v.Path, v.BasePath, v.Query); got != v.Canonical {
			t.Errorf("%s: canonical %q, want %q", v.Name, got, v.Canonical)
		}
		if got := atlassian.QSH(v.Method, v.Path, v.BasePath, v.Query); got != v.QSH {
			t.Errorf("%s: qsh %s, want %s", v.Name, got, v.QSH)
		}
	}
}

func FuzzQSH(f *testing.F) {
	f.Add("GET", "/rest/api/2/issue/", "/wiki", "a=1&a=0&jwt=x&b=%20+")
	f.Add("post", "", "", "")
	f.Add("GET", "/a&b", "/", "%zz=%FF&=&&")
	f.Fuzz(func(t *testing.T, method, path, base, query string) {
		q := atlassian.QSH(method, path, base, query)
		if len(q) != 64 || q != atlassian.QSH(method, path, base, query) {
			t.Fatalf("qsh %q not a stable 64-hex digest", q)
		}
		c := atlassian.CanonicalRequest(method, path, base, query)
		// The path part never holds a bare '&': it is always escaped, so the
		// path cannot pose as a query.
		m := strings.ToUpper(method) + "&"
		if strings.Contains(method, "&") {
			return
		}
		if !strings.HasPrefix(c, m) {
			t.Fatalf("canonical %q does not start with METHOD&", c)
		}
		rest := c[len(m):]
		for i := 0; i < len(rest); i++ {
			if rest[i] == '&' {
				if rest[0] != '/' {
					t.Fatalf("canonical path %q does not start with /", rest[:i])
				}
				return
			}
		}
		t.Fatalf("canonical %q has no path/query separator", c)
	})
}
