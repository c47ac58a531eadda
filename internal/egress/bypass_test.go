package egress

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestNoOutboundCallsBypassTheGate keeps promise P9 (no data sharing)
// structural: outside this package nothing in Ferry can open a connection
// except through a Gate. The simulator (internal/jirasim) plays Jira, not
// Ferry, and is exempt; so is internal/feedclient, the `ferry export` client
// that runs on a user's machine and talks only to the feed URL it is given.
func TestNoOutboundCallsBypassTheGate(t *testing.T) {
	root := repoRoot(t)
	exempt := []string{
		filepath.Join(root, "internal", "egress"),
		filepath.Join(root, "internal", "jirasim"),
		filepath.Join(root, "internal", "feedclient"),
	}
	var findings []string
	files := 0
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				name := d.Name()
				if slices.Contains(exempt, path) || name == "testdata" || name == "vendor" || (path != filepath.Join(root, dir) && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_"))) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			f, err := findBypasses(rel, src)
			if err != nil {
				return err
			}
			files++
			findings = append(findings, f...)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatalf("no Go files found under %s/internal or %s/cmd; the check checked nothing", root, root)
	}
	for _, f := range findings {
		t.Errorf("%s (use egress.Gate.Client or Gate.DialContext)", f)
	}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// banned lists, per import path, the package-level functions and variables
// that open connections without the gate, and the types whose construction
// does (a zero http.Client or http.Transport dials with no checks).
var banned = map[string]struct{ funcs, vars, types []string }{
	"net/http": {
		funcs: []string{"Get", "Head", "Post", "PostForm"},
		vars:  []string{"DefaultClient", "DefaultTransport"},
		types: []string{"Client", "Transport"},
	},
	"net": {
		funcs: []string{"Dial", "DialTimeout", "DialTCP", "DialUDP", "DialIP"},
		types: []string{"Dialer"},
	},
	"crypto/tls": {
		funcs: []string{"Dial", "DialWithDialer"},
		types: []string{"Dialer"},
	},
	"net/smtp": {
		funcs: []string{"Dial", "SendMail"},
	},
}

// findBypasses parses one file and reports every bypass as "file:line: what".
func findBypasses(filename string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	// Local name → import path, for the banned packages only.
	local := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if _, ok := banned[p]; !ok {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "_" {
			continue
		}
		if name == "." {
			return []string{fmt.Sprintf("%s: dot-import of %q hides outbound calls", fset.Position(imp.Pos()), p)}, nil
		}
		local[name] = p
	}
	if len(local) == 0 {
		return nil, nil
	}
	// sel reports the import path and name if e is pkg.Name of a banned package.
	sel := func(e ast.Expr) (string, string, bool) {
		s, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", "", false
		}
		id, ok := s.X.(*ast.Ident)
		if !ok {
			return "", "", false
		}
		p, ok := local[id.Name]
		return p, s.Sel.Name, ok
	}
	isType := func(e ast.Expr) (string, bool) {
		p, n, ok := sel(e)
		if ok && slices.Contains(banned[p].types, n) {
			return p + "." + n, true
		}
		return "", false
	}
	var out []string
	report := func(pos token.Pos, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(pos), fmt.Sprintf(format, args...)))
	}
	calls := map[*ast.SelectorExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if name, ok := isType(n.Type); ok {
				report(n.Pos(), "constructs %s{}", name)
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "new" && len(n.Args) == 1 {
				if name, ok := isType(n.Args[0]); ok {
					report(n.Pos(), "constructs new(%s)", name)
				}
			}
			if s, ok := n.Fun.(*ast.SelectorExpr); ok {
				if p, name, ok := sel(s); ok && slices.Contains(banned[p].funcs, name) {
					report(n.Pos(), "calls %s.%s", p, name)
					calls[s] = true
				}
			}
		case *ast.ValueSpec:
			// var c http.Client — a usable zero value.
			if n.Type != nil {
				if name, ok := isType(n.Type); ok {
					report(n.Pos(), "declares a zero %s", name)
				}
			}
		case *ast.SelectorExpr:
			if p, name, ok := sel(n); ok {
				if slices.Contains(banned[p].vars, name) {
					report(n.Pos(), "uses %s.%s", p, name)
				}
				// A banned function passed as a value (f := http.Get).
				if slices.Contains(banned[p].funcs, name) && !calls[n] {
					report(n.Pos(), "refers to %s.%s", p, name)
				}
			}
		}
		return true
	})
	return out, nil
}

func TestBypassCheckerFindsViolations(t *testing.T) {
	src := `package leak

import (
	"crypto/tls"
	nethttp "net/http"
	"net"
	"net/smtp"
)

var zero nethttp.Client

func leak() {
	_ = &nethttp.Client{}
	_ = nethttp.Client{Timeout: 1}
	_ = new(nethttp.Transport)
	_, _ = nethttp.Get("https://example.com")
	_ = nethttp.DefaultClient
	_ = nethttp.DefaultTransport.RoundTrip
	_, _ = net.Dial("tcp", "10.0.0.1:80")
	d := net.Dialer{}
	_ = d
	_, _ = tls.Dial("tcp", "x:443", nil)
	_ = smtp.SendMail("x:25", nil, "", nil, nil)
	f := nethttp.PostForm
	_ = f
}
`
	got, err := findBypasses("internal/leak/leak.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"internal/leak/leak.go:10:5: declares a zero net/http.Client",
		"internal/leak/leak.go:13:7: constructs net/http.Client{}",
		"internal/leak/leak.go:14:6: constructs net/http.Client{}",
		"internal/leak/leak.go:15:6: constructs new(net/http.Transport)",
		"internal/leak/leak.go:16:9: calls net/http.Get",
		"internal/leak/leak.go:17:6: uses net/http.DefaultClient",
		"internal/leak/leak.go:18:6: uses net/http.DefaultTransport",
		"internal/leak/leak.go:19:9: calls net.Dial",
		"internal/leak/leak.go:20:7: constructs net.Dialer{}",
		"internal/leak/leak.go:22:9: calls crypto/tls.Dial",
		"internal/leak/leak.go:23:6: calls net/smtp.SendMail",
		"internal/leak/leak.go:24:7: refers to net/http.PostForm",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBypassCheckerAllowsUsingTheGate(t *testing.T) {
	src := `package fine

import (
	"context"
	"net"
	"net/http"

	"ferry/internal/egress"
)

type Client struct{ hc *http.Client }

func New(g *egress.Gate) *Client { return &Client{hc: g.Client(egress.Jira)} }

func (c *Client) Do(ctx context.Context, g *egress.Gate) (net.Conn, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://x.atlassian.net/", nil)
	_, _ = c.hc.Do(req)
	var h http.Handler = http.NotFoundHandler()
	_ = h
	_, _ = net.SplitHostPort("a:1")
	return g.DialContext(ctx, egress.SMTP, "tcp", "a:25")
}
`
	got, err := findBypasses("internal/fine/fine.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("false positives:\n%s", strings.Join(got, "\n"))
	}
}
