package jirasim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSharesNoCodeWithFerry keeps the simulator independent of what it
// simulates: no Ferry package may be imported, so bugs cannot cancel out.
func TestSharesNoCodeWithFerry(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "ferry" || strings.HasPrefix(p, "ferry/") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
