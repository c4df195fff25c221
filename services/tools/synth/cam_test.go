package synth

import (
	"strings"
	"sync"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	dmicrecord "github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

const sampleDir = "../../../reference/sample"

var (
	sampleOnce sync.Once
	sampleRef  *refdata.Reference
	sampleErr  error
)

func sample(t testing.TB) *refdata.Reference {
	t.Helper()
	sampleOnce.Do(func() { sampleRef, sampleErr = refdata.LoadDir(sampleDir) })
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	return sampleRef
}

// camPipeline takes a provider JSON line the way the services do: decode,
// validate (the built-in specifications and the sample reference data),
// de-identify, assign.
type camPipeline struct {
	v   *spec.Validator
	d   *didi.Deidentifier
	a   *cam.Assigner
	ref *refdata.Reference
}

func newCAMPipeline(t *testing.T) *camPipeline {
	t.Helper()
	ref := sample(t)
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := didi.NewKeyRing(map[string]didi.Key{didi.DomainAnalytics: {Version: "t1", Secret: []byte(strings.Repeat("k", didi.MinSecretBytes))}})
	if err != nil {
		t.Fatal(err)
	}
	return &camPipeline{
		v:   spec.New(reg, spec.WithClock(func() time.Time { return clocktest.Today(t) }), spec.WithPractices(ref)),
		d:   didi.NewDeidentifier(ring, ref),
		a:   cam.NewAssigner(ref),
		ref: ref,
	}
}

// assign returns the CAM result of it and the failures validation found.
func (p *camPipeline) assign(t *testing.T, it Item) (*cam.Result, []*dmicv1.Failure) {
	t.Helper()
	rec, _, err := dmicrecord.DecodeJSON(it.JSON, 0)
	if err != nil {
		t.Fatalf("%s: decode: %v", it.RecordID, err)
	}
	res := p.v.Validate(rec, spec.ValidateInput{Source: it.Source})
	act, err := p.d.Deidentify(it.Dataset, rec)
	if err != nil {
		t.Fatalf("%s: de-identify: %v", it.RecordID, err)
	}
	var r cam.Result
	p.a.Decide(act, nil, &r)
	return &r, res.Failures
}

// path is the trail as CAMExpectation.Path writes it.
func path(r *cam.Result) string {
	var steps []string
	last := ""
	for _, d := range r.Trail() {
		var sign string
		switch d.Answer {
		case "Yes":
			sign = "+"
		case "No":
			sign = "-"
		default:
			continue // a note (the version, no commissioner), not a question
		}
		if d.Step == last {
			continue
		}
		last = d.Step
		steps = append(steps, d.Step+sign)
	}
	return strings.Join(steps, " ")
}

// scenarioItem makes the provider record of scenario s.
func scenarioItem(t *testing.T, g *generator, s *camScenario) Item {
	t.Helper()
	a := g.camActivity(s)
	src := dmicv1.Source_SOURCE_PROVIDER
	if s.national {
		src = dmicv1.Source_SOURCE_NATIONAL
	}
	it := g.item(&a, &a.rec, src)
	it.CAM = s.expectation(a.rec.get("commissioner_code"))
	return it
}

// Every scenario, run through validation, de-identification and the CAM
// engine, ends where the guidance says (its expectation, worked out by
// hand), by the path it says, and breaks no validation rule.
func TestCAMScenariosAgainstTheEngine(t *testing.T) {
	p := newCAMPipeline(t)
	c := testConfig(100)
	c.Datasets = []dmicv1.Dataset{1, 2, 3, 4}
	g := newGenerator(c.withDefaults())
	for i := range camBook {
		s := &camBook[i]
		t.Run(s.name, func(t *testing.T) {
			if s.section == "" || s.path == "" || s.step == "" || s.reason == "" {
				t.Fatal("a scenario names its section, path, step and reason")
			}
			it := scenarioItem(t, g, s)
			r, fails := p.assign(t, it)
			for _, f := range fails {
				t.Errorf("validation: %s on %s (%s)", f.GetRuleId(), f.GetField(), f.GetMessage())
			}
			e := it.CAM
			if r.Step != e.Step || r.ReasonCode != e.ReasonCode || r.Commissioner != e.Commissioner || r.Version != e.Version {
				t.Errorf("%s:\n got step %s, %s, commissioner %q, CAM %s\nwant step %s, %s, commissioner %q, CAM %s\n%s",
					e.Section, r.Step, r.ReasonCode, r.Commissioner, r.Version, e.Step, e.ReasonCode, e.Commissioner, e.Version, cam.Explain(p.a.Explained(r)))
			}
			if got := path(r); got != e.Path {
				t.Errorf("%s: path\n got %s\nwant %s", e.Section, got, e.Path)
			}
		})
	}
}

// flowChartSteps are the questions of the CAM 2025/26 flow chart (with
// 2024/25's C-0b) and dmic's drug and device exclusion.
var flowChartSteps = []string{"EXCL", "A&E-1", "A", "B", "B-1", "B-2", "B-3", "B-4", "WB-1", "WB-2", "WB-3",
	"C", "C-1", "WB-10", "C-3", "C-0", "C-0a", "C-0b", "C-2", "D", "E", "F", "H", "I", "I-1", "J", "C-5", "C-6"}

// The scenarios between them ask every question of the flow chart and
// answer each both ways where the chart leads on from both, and end at
// every step that assigns.
func TestCAMBookCoversTheFlowChart(t *testing.T) {
	asked := map[string]bool{}
	decides := map[string]bool{}
	for _, s := range camBook {
		for _, q := range strings.Fields(s.path) {
			asked[q] = true
		}
		decides[s.step] = true
	}
	for _, q := range flowChartSteps {
		if !asked[q+"+"] && !asked[q+"-"] {
			t.Errorf("no scenario asks %s", q)
		}
	}
	// Both answers of every question that is not always the last.
	for _, q := range []string{"EXCL", "A&E-1", "A", "B", "B-1", "B-2", "B-3", "WB-1", "WB-2", "WB-3", "C", "C-1",
		"WB-10", "C-0", "C-0a", "D", "E", "F", "H", "I", "I-1", "J", "C-5", "C-6", "B-4", "C-2"} {
		if !asked[q+"+"] || !asked[q+"-"] {
			t.Errorf("%s is not answered both Yes and No (%v, %v)", q, asked[q+"+"], asked[q+"-"])
		}
	}
	for _, st := range []string{"EXCL", "A&E-1", "A", "B-2", "B-3", "B-4", "C", "C-1", "WB-10", "C-3", "C-0b", "C-2",
		"D", "E", "F", "H", "I-1", "J", "C-5", "C-6"} {
		if !decides[st] {
			t.Errorf("no scenario ends at %s", st)
		}
	}
	for _, y := range []string{y2425, y2526} {
		n := 0
		for _, s := range camBook {
			if s.year == y {
				n++
			}
		}
		if n < 10 {
			t.Errorf("only %d scenarios in %s", n, y)
		}
	}
}

// A normal run goes through every scenario of its datasets: make run's
// first batch (2,000 activities) and the end-to-end test's (400), whatever
// the seed; each scenario's record is good.
func TestCAMScenariosInANormalRun(t *testing.T) {
	for _, tc := range []struct {
		records int
		seed    int64
	}{{2000, 1}, {400, 7}, {400, 8}, {2000, 99}} {
		c := testConfig(tc.records)
		c.Seed = tc.seed
		c.Providers = sampleTrusts // as make run and the e2e test give it
		items, err := Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		n := 0
		for _, it := range items {
			if it.CAM == nil {
				continue
			}
			n++
			national := it.Source == dmicv1.Source_SOURCE_NATIONAL && it.NationalOnly && it.Provider == independentProvider
			if len(it.Bad) > 0 || it.Source != dmicv1.Source_SOURCE_PROVIDER && !national || it.Revision || it.Delete {
				t.Fatalf("scenario item %s is not a good provider original or the independent provider's national-only record", it.RecordID)
			}
			seen[it.CAM.Scenario]++
		}
		book := camBookFor(c.withDefaults())
		for _, s := range book {
			if seen[s.name] == 0 {
				t.Errorf("%d records, seed %d: scenario %q never made", tc.records, tc.seed, s.name)
			}
		}
		if share := float64(n) / float64(tc.records); share > 0.15 {
			t.Errorf("%d records: scenarios are %.2f of activity, want a small share", tc.records, share)
		}
		e := Expect(items)
		if len(e.CAMSteps) == 0 {
			t.Error("Expect counts no CAM steps")
		}
	}
}

// sampleTrusts are the open trusts of the sample reference data with their
// postcode in it (refdata.Reference.TrustCodes), which make run and the e2e
// test give the generator.
var sampleTrusts = []string{"RCD", "RP4", "RVR"}

// A run keeps to its providers: with one, only that provider's scenarios
// (a test that submits one provider's file). The independent provider's
// record comes from the national exchange, in a run with national-only
// activities.
func TestCAMScenariosKeepToTheProviders(t *testing.T) {
	for _, providers := range [][]string{{"RCD"}, {"RJ7", "RVR"}, sampleTrusts} {
		for _, nationalOnly := range []float64{0, -1} {
			c := testConfig(2000)
			c.Providers, c.NationalOnlyShare = providers, nationalOnly
			items, err := Generate(c)
			if err != nil {
				t.Fatal(err)
			}
			allowed := map[string]bool{}
			for _, p := range providers {
				allowed[p] = true
			}
			independent := 0
			for _, it := range items {
				if it.Provider == independentProvider && it.Source == dmicv1.Source_SOURCE_NATIONAL && it.NationalOnly && it.CAM != nil {
					independent++
					continue
				}
				if !allowed[it.Provider] {
					t.Fatalf("providers %v: item of provider %s", providers, it.Provider)
				}
			}
			if (independent > 0) != (nationalOnly == 0) {
				t.Errorf("providers %v, national-only share %v: %d records of the independent provider", providers, nationalOnly, independent)
			}
		}
	}
	if got := sample(t).TrustCodes(); strings.Join(got, " ") != strings.Join(sampleTrusts, " ") {
		t.Errorf("the sample's trusts are %v, the tests assume %v", got, sampleTrusts)
	}
	if _, ok := sample(t).Trust(independentProvider); ok {
		t.Errorf("%s is in etr: it would have a host", independentProvider)
	}
}

// A long run (the bench's) keeps to the configured share, and CAMShare -1
// makes none.
func TestCAMShare(t *testing.T) {
	c := testConfig(20000)
	c.Providers = sampleTrusts
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	n, good := 0, 0
	for _, it := range items {
		if it.Source != dmicv1.Source_SOURCE_PROVIDER || it.Revision || it.Delete {
			continue
		}
		if len(it.Bad) == 0 {
			good++
		}
		if it.CAM != nil {
			n++
		}
	}
	near(t, "CAM share", float64(n)/float64(c.Records), DefaultCAMShare, 0.002)
	c.CAMShare = -1
	items, _ = Generate(c)
	for _, it := range items {
		if it.CAM != nil {
			t.Fatal("CAMShare -1 made a scenario")
		}
	}
}
