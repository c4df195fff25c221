// Package services holds no code: its one test keeps the layers of services/
// apart (docs/architecture.md, Layers). It sits at the root of the module
// because it is about every package and belongs to none of them.
package services

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// The layers, by import path under services/. A name covers the package and
// the packages below it. Add a package here when it is created or moved; an
// entry that names no package fails the test (so that a move cannot leave the
// rules checking nothing), unless it says why it may be missing.
var (
	// domain: the rules of commissioning data, plain Go. A domain package may
	// import other domain packages, the kernel, the API contract (proto/) and
	// libraries that are not a transport, and nothing else of dmic. A
	// service's own rules sit in its folder (validate/spec, deidentify/didi,
	// assign/cam, reconcile/match); rules several services share sit under
	// internal/.
	//
	// Not domain, though they hold rules:
	//   - reconcile is the stage and its state; its rules are reconcile/match.
	//   - validate/checker, the providers' offline checker, runs validate's
	//     stage on pipeline messages it builds, so it is a stage below.
	domain = []entry{
		{name: "internal/record"},
		{name: "internal/refdata"},
		{name: "internal/nhs"},
		{name: "internal/dqreport"},
		{name: "validate/spec"},
		{name: "validate/specs"},
		{name: "deidentify/didi"},
		{name: "assign/cam"},
		{name: "reconcile/match"},
		{name: "load/dsa"}, // data sharing agreements: load turns them into recipients' data
	}

	// kernel: packages so small and neutral that domain code may use them.
	// They import the standard library only.
	kernel = []entry{
		{name: "internal/clock"},  // the one clock every date decision reads
		{name: "internal/limits"}, // sizes shared by the reader and the transport
	}

	// tooling: what is not shipped. Nothing outside it imports it, except
	// tests and test-support packages.
	tooling = []entry{
		{name: "tools"},
		{name: "cmd/bench"},
		{name: "cmd/devrun"},
		{name: "cmd/generate"},
		{name: "cmd/devpki"},
	}

	// services: one folder per service, holding its main (cmd/), its stage or
	// API, and its own rules. What several services share is under
	// internal/, which imports no service (TestSharedImportsNoService).
	services = []string{"ingest", "validate", "deidentify", "assign", "reconcile", "load"}

	// stages: the runner's contract (pipeline, envelope, topics, controllog)
	// and the packages that implement it or run it (the five stages and the
	// offline checker). None of them imports kafka-go: a stage sees
	// pipeline.Message, whatever brought it, and a control log, a replay or a
	// changelog through a small interface (controllog.Log, pipeline.OpenRange,
	// pipeline.PartitionLog) that its main fills with the Kafka adapter. A name
	// here is one package, not the packages below it (the adapters are
	// internal/pipeline/kafkapipe and internal/controllog/kafkalog).
	stages = []string{
		"internal/pipeline",
		"internal/envelope",
		"internal/topics",
		"internal/controllog",
		"validate",
		"validate/checker",
		"deidentify",
		"assign",
		"reconcile",
		"load",
	}

	// kafkaClients: the module paths of Kafka client libraries.
	kafkaClients = []string{
		"github.com/segmentio/kafka-go",
		"github.com/twmb/franz-go",
	}

	// transports: the module paths (prefixes) of the Kafka, ClickHouse, gRPC and
	// metrics libraries, which a domain package must not reach.
	transports = []string{
		"github.com/segmentio/kafka-go",
		"github.com/twmb/franz-go",
		"github.com/ClickHouse/",
		"google.golang.org/grpc",
		"github.com/prometheus/",
	}
)

const (
	module = "github.com/dmic-nhs/dmic/services"
	// contract is the API contract. Its generated packages hold the gRPC
	// service stubs beside the messages, so a domain package that uses a
	// message reaches grpc through them: the search for transports does not
	// look inside the contract.
	contract = "github.com/dmic-nhs/dmic/proto/"
)

type entry struct {
	name         string
	mayBeMissing string // why the package may not exist yet; "" if it must
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
	DepOnly    bool
}

// graph is the import graph (non-test imports) of every package of the module
// and of everything they depend on, by import path.
type graph map[string]*pkg

func loadGraph(t *testing.T) graph {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatalf("the layer test needs the go command: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Imports,Standard,DepOnly", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		g[p.ImportPath] = &p
	}
	if len(g.ours()) == 0 {
		t.Fatalf("go list found no package of %s", module)
	}
	return g
}

// ours is the module's packages, by path under services/ ("." for the root).
func (g graph) ours() map[string]*pkg {
	m := map[string]*pkg{}
	for _, p := range g {
		if rel, ok := relative(p.ImportPath); ok && !p.DepOnly {
			m[rel] = p
		}
	}
	return m
}

// relative is path's name under services/, if it is a package of the module.
func relative(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// within reports whether rel is one of the entries or below one.
func within(rel string, entries []entry) bool {
	return slices.ContainsFunc(entries, func(e entry) bool {
		return rel == e.name || strings.HasPrefix(rel, e.name+"/")
	})
}

// testSupport reports whether rel is a test-support package: x/xtest, a
// package for the tests of x (chstore/chstoretest, clock/clocktest).
func testSupport(rel string) bool {
	dir, base := path.Split(rel)
	return dir != "" && base == path.Base(dir)+"test"
}

// requireEntries fails on an entry that names no package, and returns the
// entries that do.
func requireEntries(t *testing.T, layer string, entries []entry, ours map[string]*pkg) []entry {
	t.Helper()
	var present []entry
	for _, e := range entries {
		found := false
		for rel := range ours {
			if within(rel, []entry{e}) {
				found = true
				break
			}
		}
		switch {
		case found:
			present = append(present, e)
		case e.mayBeMissing != "":
			t.Logf("%s package %s does not exist (yet): %s", layer, e.name, e.mayBeMissing)
		default:
			t.Errorf("%s package %s does not exist: update the table in layers_test.go", layer, e.name)
		}
	}
	return present
}

// transport reports whether importPath is a Kafka, ClickHouse, gRPC or
// metrics library.
func transport(importPath string) bool {
	return slices.ContainsFunc(transports, func(prefix string) bool { return strings.HasPrefix(importPath, prefix) })
}

// TestDomainIsPlainGo: a domain package reaches, through its imports, no
// transport library and no dmic package outside the domain and the kernel.
// Each failure shows the chain of imports from the domain package.
func TestDomainIsPlainGo(t *testing.T) {
	g := loadGraph(t)
	ours := g.ours()
	domain := requireEntries(t, "domain", domain, ours)
	requireEntries(t, "kernel", kernel, ours)
	allowed := func(rel string) bool { return within(rel, domain) || within(rel, kernel) }
	for _, rel := range slices.Sorted(maps.Keys(ours)) {
		if !within(rel, domain) || testSupport(rel) {
			continue
		}
		forbidden := func(imp string) bool {
			rel, isOurs := relative(imp)
			return transport(imp) || (isOurs && !allowed(rel))
		}
		for _, chain := range g.forbiddenChains(ours[rel].ImportPath, forbidden, nil) {
			last := chain[len(chain)-1]
			what := "a transport library"
			if _, isOurs := relative(last); isOurs {
				what = "a package neither domain nor kernel"
			}
			t.Errorf("domain package %s imports %s, %s (import chain: %s)", rel, short(last), what, strings.Join(shortAll(chain), " → "))
		}
	}
}

// forbiddenChains walks the imports of from, breadth first, and returns the
// shortest chain of imports to each package it reaches that forbidden names.
// It does not look past a forbidden package, nor into the standard library,
// the contract, or a package that pass names (nil: none).
func (g graph) forbiddenChains(from string, forbidden, pass func(importPath string) bool) [][]string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	var chains [][]string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range g[cur].Imports {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = cur
			p := g[imp]
			switch {
			case forbidden(imp):
				var chain []string
				for at := imp; at != ""; at = parent[at] {
					chain = append([]string{at}, chain...)
				}
				chains = append(chains, chain)
			case p == nil || p.Standard || strings.HasPrefix(imp, contract) || (pass != nil && pass(imp)):
			default:
				queue = append(queue, imp)
			}
		}
	}
	return chains
}

// TestStagesDoNotNameTheTransport: the stage contract and the stages reach no
// Kafka client (issue 11). Each
// failure shows the chain of imports; a direct import is a chain of one.
func TestStagesDoNotNameTheTransport(t *testing.T) {
	g := loadGraph(t)
	ours := g.ours()
	kafka := func(imp string) bool {
		return slices.ContainsFunc(kafkaClients, func(prefix string) bool { return strings.HasPrefix(imp, prefix) })
	}
	for _, name := range stages {
		p, ok := ours[name]
		if !ok {
			t.Errorf("stage package %s does not exist: update the table in layers_test.go", name)
			continue
		}
		for _, chain := range g.forbiddenChains(p.ImportPath, kafka, nil) {
			t.Errorf("stage package %s reaches %s (import chain: %s): a stage sees pipeline.Message; Kafka stays in the adapters (internal/pipeline/kafkapipe, internal/controllog/kafkalog), which the main wires in",
				name, chain[len(chain)-1], strings.Join(shortAll(chain), " → "))
		}
	}
}

// TestKernelImportsOnlyTheStandardLibrary: the kernel is what the domain may
// import without a second look, so it must stay that small.
func TestKernelImportsOnlyTheStandardLibrary(t *testing.T) {
	g := loadGraph(t)
	ours := g.ours()
	requireEntries(t, "kernel", kernel, ours)
	for _, rel := range slices.Sorted(maps.Keys(ours)) {
		if !within(rel, kernel) || testSupport(rel) {
			continue
		}
		for _, imp := range ours[rel].Imports {
			if p := g[imp]; p == nil || !p.Standard {
				t.Errorf("kernel package %s imports %s: the kernel imports the standard library only", rel, short(imp))
			}
		}
	}
}

// TestNothingShippedImportsTooling: outside tooling, no package imports a
// tooling package; tests and test-support packages may.
func TestNothingShippedImportsTooling(t *testing.T) {
	g := loadGraph(t)
	ours := g.ours()
	requireEntries(t, "tooling", tooling, ours)
	for _, rel := range slices.Sorted(maps.Keys(ours)) {
		if within(rel, tooling) || testSupport(rel) {
			continue
		}
		for _, imp := range ours[rel].Imports {
			if to, ok := relative(imp); ok && within(to, tooling) {
				t.Errorf("package %s imports tooling package %s: what is shipped must not depend on what is not", rel, to)
			}
		}
	}
}

// TestTestCodeStaysInTests: only test-support packages (x/xtest) import
// testing or a test-support package; the rest is built into the binaries.
func TestTestCodeStaysInTests(t *testing.T) {
	ours := loadGraph(t).ours()
	for _, rel := range slices.Sorted(maps.Keys(ours)) {
		if testSupport(rel) {
			continue
		}
		for _, imp := range ours[rel].Imports {
			to, isOurs := relative(imp)
			switch {
			case imp == "testing" || strings.HasPrefix(imp, "testing/"):
				t.Errorf("package %s imports %s outside its tests: move the helper to a test-support package (%s/%stest)", rel, imp, rel, path.Base(rel))
			case isOurs && testSupport(to):
				t.Errorf("package %s imports test-support package %s outside its tests", rel, to)
			}
		}
	}
}

// short names a package of the module by its path under services/.
func short(importPath string) string {
	if rel, ok := relative(importPath); ok {
		return rel
	}
	return importPath
}

func shortAll(importPaths []string) []string {
	out := make([]string, len(importPaths))
	for i, p := range importPaths {
		out[i] = short(p)
	}
	return out
}

// TestSharedImportsNoService: what several services share (internal/) depends
// on no service and no tool, so that a service can change its own folder
// without reaching the others.
func TestSharedImportsNoService(t *testing.T) {
	ours := loadGraph(t).ours()
	for _, rel := range slices.Sorted(maps.Keys(ours)) {
		if !strings.HasPrefix(rel, "internal/") {
			continue
		}
		for _, imp := range ours[rel].Imports {
			to, isOurs := relative(imp)
			if !isOurs {
				continue
			}
			if top, _, _ := strings.Cut(to, "/"); slices.Contains(services, top) || within(to, tooling) {
				t.Errorf("shared package %s imports %s: internal/ serves the services and imports none of them", rel, to)
			}
		}
	}
}
