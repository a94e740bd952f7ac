package market_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The market and its price source are deterministic: they never read the wall
// clock, sleep, or start goroutines. The service and the simulator both rely
// on replaying them.
func TestMarketAndPricesArePure(t *testing.T) {
	banned := map[string]bool{"time.Now": true, "time.Sleep": true, "time.After": true, "time.Tick": true, "time.NewTimer": true, "time.Since": true, "time.Until": true}
	for _, dir := range []string{".", "../prices"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && banned[id.Name+"."+n.Sel.Name] {
						t.Errorf("%s uses %s.%s: take the time from the caller", file, id.Name, n.Sel.Name)
					}
				case *ast.GoStmt:
					t.Errorf("%s starts a goroutine: the core is driven by its caller", file)
				}
				return true
			})
		}
	}
}
