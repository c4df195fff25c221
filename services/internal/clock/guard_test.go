package clock_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
)

// mustBeGuarded are suites known to decide by the date. The guard finds the
// date-sensitive suites by their import of clocktest; these must be among
// them, so that the guard cannot pass by finding nothing.
var mustBeGuarded = []string{
	"validate/spec", "validate", "validate/checker", "ingest", "deidentify", "cmd/dmic",
}

// TestClockGuard runs every suite that takes its today from clocktest again
// with today moved to each of clocktest.GuardDays (a financial year's first
// minutes in England, a leap day, 2030, ...) and expects the same results:
// the same tests, each passing. A test that hard-codes "the future" as a
// date, or reads the wall clock where it should read its clock, shows here
// as a difference, long before the calendar reaches it.
func TestClockGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs other suites several times")
	}
	if os.Getenv(clocktest.EnvToday) != "" {
		t.Skip("inside a guard run")
	}
	goBin := goCommand(t)
	pkgs := dateSensitive(t, goBin)
	base := runSuites(t, goBin, pkgs, clocktest.Format(clocktest.DefaultToday))
	if len(base) == 0 {
		t.Fatal("the date-sensitive suites ran no test")
	}
	for name, r := range base {
		if r.action != "pass" && r.action != "skip" {
			t.Errorf("on the default day %s: %s %s%s", clocktest.Format(clocktest.DefaultToday), name, r.action, r.tail())
		}
	}
	for _, day := range clocktest.GuardDays() {
		got := runSuites(t, goBin, pkgs, clocktest.Format(day))
		var diffs []string
		for name, want := range base {
			if got[name].action != want.action {
				diffs = append(diffs, fmt.Sprintf("%s: %s, on the default day %s%s", name, orNotRun(got[name].action), want.action, got[name].tail()))
			}
		}
		for name, r := range got {
			if _, ok := base[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s, not run on the default day", name, r.action))
			}
		}
		slices.Sort(diffs)
		for _, d := range diffs {
			t.Errorf("with today %s: %s", clocktest.Format(day), d)
		}
		t.Logf("today %s: %d tests, %d differ", clocktest.Format(day), len(got), len(diffs))
	}
}

func orNotRun(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no go command: %v", err)
	}
	return p
}

// dateSensitive lists the packages under services/ whose tests import
// clocktest.
func dateSensitive(t *testing.T, goBin string) []string {
	t.Helper()
	cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .TestImports ","}},{{join .XTestImports ","}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/dmic-nhs/dmic/services/"
	var pkgs []string
	for line := range strings.Lines(string(out)) {
		path, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		// Not this package: its guard would run itself.
		if path != module+"internal/clock" && slices.Contains(strings.Split(imports, ","), module+"internal/clock/clocktest") {
			pkgs = append(pkgs, path)
		}
	}
	for _, p := range mustBeGuarded {
		if !slices.Contains(pkgs, module+p) {
			t.Errorf("%s decides by the date but its tests do not take today from clocktest", p)
		}
	}
	return pkgs
}

// result is one test's outcome and what it printed.
type result struct {
	action string
	output []string
}

// tail is the end of what a failed test printed, to see why.
func (r result) tail() string {
	if r.action != "fail" || len(r.output) == 0 {
		return ""
	}
	out := r.output[max(0, len(r.output)-15):]
	return ":\n" + strings.Join(out, "")
}

// runSuites runs pkgs' tests with today set and returns
// each test's result by package and name.
func runSuites(t *testing.T, goBin string, pkgs []string, today string) map[string]result {
	t.Helper()
	args := append([]string{"test", "-count=1", "-json", "-timeout", "5m"}, pkgs...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), clocktest.EnvToday+"="+today)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("go test with today %q: %v\n%s", today, err, stderr.String())
	}
	results := map[string]result{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct{ Action, Package, Test, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		key := strings.TrimPrefix(ev.Package, "github.com/dmic-nhs/dmic/services/") + " " + ev.Test
		r := results[key]
		switch ev.Action {
		case "output":
			r.output = append(r.output, ev.Output)
		case "pass", "fail", "skip":
			r.action = ev.Action
		}
		results[key] = r
	}
	for k, r := range results {
		if r.action == "" {
			delete(results, k) // output of a test that never ended (the run was cut short)
		}
	}
	if len(results) == 0 {
		t.Fatalf("go test with today %q gave no results: %v\n%s", today, err, stderr.String())
	}
	t.Logf("today %q: %d results in %s", today, len(results), time.Since(start).Round(time.Second))
	return results
}
