package clock_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// edge is the code allowed to read the wall clock (time.Now, clock.System),
// by path under services/, each with the reason. A folder ends in "/".
// Everything else takes "now" from a clock it is given, so that a decision
// by date (version in effect, dates in the future, receipt and rotation
// times) can be set by a test or a replay. Elapsed-time measurements
// (time.Since, time.Until, timers) are not decisions and are not listed.
var edge = map[string]string{
	"internal/clock/clock.go":       "the wall clock itself",
	"internal/service/":             "the service process shell: composition root, start-up waits",
	"cmd/":                          "commands' mains: the process edge",
	"ingest/cmd/":                   "the service's main: the process edge",
	"validate/cmd/":                 "the service's main: the process edge",
	"deidentify/cmd/":               "the service's main: the process edge",
	"assign/cmd/":                   "the service's main: the process edge",
	"reconcile/cmd/":                "the service's main: the process edge",
	"load/cmd/":                     "the service's main: the process edge",
	"internal/pipeline/":            "the runner's batch deadline, timings, and how long a write has failed (health)",
	"internal/control/control.go":   "process uptime",
	"internal/control/health.go":    "how long a health state has lasted, for its log",
	"reconcile/stage.go":            "how long restoring state took, for the log",
	"tools/devstack/":               "the make run supervisor's start-up waits",
	"tools/bench/":                  "the benchmark measures wall time",
	"internal/chstore/chstoretest/": "unique names for test databases",
}

func allowed(path string) bool {
	for p := range edge {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// TestOnlyTheProcessEdgeReadsTheWallClock fails on any read of the wall clock
// outside the edge: the defect of issue 9 was a service that judged "in
// effect" by time.Now while its test set the validator's clock.
func TestOnlyTheProcessEdgeReadsTheWallClock(t *testing.T) {
	root := "../.."
	var found []string
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || (strings.HasPrefix(n, ".") && n != "..") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		if allowed(rel) {
			return nil
		}
		for _, use := range wallClockReads(t, path) {
			found = append(found, rel+":"+use)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["validate/spec/validator.go"] || !seen["internal/clock/clock.go"] {
		t.Fatalf("walked the wrong tree: %d files", len(seen))
	}
	for _, f := range found {
		t.Errorf("%s reads the wall clock: take a clock.Clock from the composition root instead (or add the file to the edge, with the reason)", f)
	}
	// An edge entry that no longer names a file is a hole waiting to happen.
	for p := range edge {
		if !slices.ContainsFunc(keys(seen), func(f string) bool { return f == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(f, p)) }) {
			t.Errorf("edge entry %s names no file", p)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// wallClockReads are the positions of time.Now and clock.System in a file,
// called or passed as values, under whatever name the packages are imported.
func wallClockReads(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // local name -> forbidden selector
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		var local, sel string
		switch p {
		case "time":
			local, sel = "time", "Now"
		case "github.com/dmic-nhs/dmic/services/internal/clock":
			local, sel = "clock", "System"
		default:
			continue
		}
		if im.Name != nil {
			local = im.Name.Name
		}
		names[local] = sel
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		s, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := s.X.(*ast.Ident); ok && names[x.Name] != "" && s.Sel.Name == names[x.Name] {
			pos := fset.Position(s.Pos())
			out = append(out, fmt.Sprintf("%d:%d %s.%s", pos.Line, pos.Column, x.Name, s.Sel.Name))
		}
		return true
	})
	return out
}
