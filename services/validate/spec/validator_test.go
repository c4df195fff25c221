package spec

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

func TestCleanRecords(t *testing.T) {
	v := testValidator(t)
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		for _, src := range []dmicv1.Source{provider, national, dmicv1.Source_SOURCE_UNSPECIFIED} {
			for _, in := range []ValidateInput{{Dataset: d, Source: src}, {Source: src}} { // dataset given, or from the record
				res := v.Validate(clean(t, d), in)
				if res.Failures != nil {
					t.Errorf("%s %v: clean record has failures %v", record.DatasetName(d), src, wants(res.Failures))
				}
				want := record.DatasetName(d) + "/2026.1"
				if src == national && d != lf {
					want = "national/2026.1"
				}
				if res.Spec.Label() != want {
					t.Errorf("%s %v: specification %s, want %s", record.DatasetName(d), src, res.Spec.Label(), want)
				}
			}
		}
	}
}

func TestPostcodeNormalised(t *testing.T) {
	v := testValidator(t)
	for _, tt := range []struct {
		in, want string
		src      dmicv1.Source
	}{
		{"sw1a1aa", "SW1A 1AA", provider},
		{" sw17  0qt ", "SW17 0QT", provider},
		{"zz993vz", "ZZ99 3VZ", provider},
		{"ZZ99 3VZ", "ZZ99 3VZ", provider},
		{"cr43ab", "CR4 3AB", national},
		{"Q1 1AA", "Q1 1AA", provider},   // rejected: left as sent
		{"sm1 a2b", "sm1 a2b", national}, // a warning in the national extract: left as sent
	} {
		r := clean(t, apc)
		r.Patient.PostcodeOfUsualAddress = tt.in
		v.Validate(r, ValidateInput{Dataset: apc, Source: tt.src})
		if got := r.GetPatient().GetPostcodeOfUsualAddress(); got != tt.want {
			t.Errorf("%q (%v): stored %q, want %q", tt.in, tt.src, got, tt.want)
		}
	}
}

// Apart from the postcode, Validate leaves the record alone.
func TestValidateChangesOnlyThePostcode(t *testing.T) {
	v := testValidator(t)
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		r := clean(t, d)
		r.Patient.NhsNumber = "123"
		r.Patient.PostcodeOfUsualAddress = "sw1a1aa"
		want := proto.Clone(r).(*recT)
		want.Patient.PostcodeOfUsualAddress = "SW1A 1AA"
		v.Validate(r, ValidateInput{})
		if !proto.Equal(want, r) {
			t.Errorf("%s: Validate changed more than the postcode", record.DatasetName(d))
		}
	}
}

func TestCleanRecordDoesNotAllocate(t *testing.T) {
	v := testValidator(t, WithPractices(practiceSet{"H85001": true, "H85020": true}))
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		r := clean(t, d)
		in := ValidateInput{Dataset: d, Source: provider, Received: fixedNow}
		allocs := testing.AllocsPerRun(200, func() {
			if v.Validate(r, in).Failures != nil {
				t.Fatal("failures")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Validate of a clean record: %v allocations", record.DatasetName(d), allocs)
		}
	}
}

func TestSpecificationFallbacks(t *testing.T) {
	v := testValidator(t)
	// A national local flow: no national specification covers it, the
	// provider one applies.
	res := v.Validate(clean(t, lf), ValidateInput{Source: national})
	if res.Failures != nil || res.Spec.Label() != "local_flow/2026.1" {
		t.Errorf("national local flow: %v under %s", wants(res.Failures), res.Spec.Label())
	}
	// No dataset and no activity: nothing covers it.
	res = v.Validate(&recT{CdsUniqueIdentifier: "X1", ProviderCode: "RJ7"}, ValidateInput{})
	if got := wants(res.Failures); !slices.Equal(got, []want{e(RuleNoSpec, "dataset")}) || res.Spec != nil || res.Spec.Label() != "" {
		t.Errorf("record with no dataset: %v", got)
	}
	if res.Failures[0].GetMessage() != msgNoSpec {
		t.Errorf("SPEC-001 message %q", res.Failures[0].GetMessage())
	}
	// An empty registry: nothing covers anything.
	res = New(nil).Validate(clean(t, apc), ValidateInput{})
	if got := wants(res.Failures); !slices.Equal(got, []want{e(RuleNoSpec, "dataset")}) {
		t.Errorf("empty registry: %v", got)
	}
	// An apc record validated as outpatient lacks every outpatient field.
	got := wants(v.Validate(clean(t, apc), ValidateInput{Dataset: op}).Failures)
	if want := []want{e("REQ-001", "attendance_identifier"), e("REQ-001", "appointment_date"), e("REQ-001", "attended_or_did_not_attend_code"),
		e("REQ-001", "treatment_function_code"), w("REQ-002", "first_attendance_code"), w("REQ-002", "priority_type_code")}; !slices.Equal(got, want) {
		t.Errorf("apc record as outpatient:\n got %v\nwant %v", got, want)
	}
	// A nil record: the mandatory fields are missing, no panic.
	got = wants(v.Validate(nil, ValidateInput{Dataset: ec}).Failures)
	if len(got) == 0 || got[0] != e("REQ-001", "cds_unique_identifier") {
		t.Errorf("nil record: %v", got)
	}
}

// The day of receipt selects the version: a record received before a new
// version's effective date is checked against the old one.
func TestReceivedSelectsVersion(t *testing.T) {
	doc := variant(t, "outpatient", "2026.2", "2026-10-01")
	// Version 2026.2 makes an unknown priority a warning.
	doc = []byte(strings.Replace(string(doc), `{"id": "CODE-014", "severity": "error"`, `{"id": "CODE-014", "severity": "warning"`, 1))
	reg, _ := with(t, builtIn(t), doc)
	v := New(reg, WithClock(fixedClock))
	r := clean(t, op)
	r.GetOutpatient().PriorityTypeCode = "9"
	before := v.Validate(r, ValidateInput{Received: day("2026-09-30T12:00:00Z")})
	after := v.Validate(r, ValidateInput{Received: day("2026-10-01T12:00:00Z")})
	if before.Spec.Label() != "outpatient/2026.1" || !slices.Equal(wants(before.Failures), []want{e("CODE-014", "priority_type_code")}) {
		t.Errorf("received before: %s %v", before.Spec.Label(), wants(before.Failures))
	}
	if after.Spec.Label() != "outpatient/2026.2" || !slices.Equal(wants(after.Failures), []want{w("CODE-014", "priority_type_code")}) {
		t.Errorf("received after: %s %v", after.Spec.Label(), wants(after.Failures))
	}
}

func TestFutureUsesLocalCalendar(t *testing.T) {
	if london() == time.UTC {
		t.Skip("no tzdata for Europe/London")
	}
	// 23:30 UTC on 30 June is 00:30 on 1 July in London (BST).
	now := func() time.Time { return time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC) }
	r := clean(t, op)
	r.GetOutpatient().AppointmentDate = "2026-07-01"
	if fs := New(builtIn(t), WithClock(now)).Validate(r, ValidateInput{}).Failures; fs != nil {
		t.Errorf("London calendar: %v", wants(fs))
	}
	fs := New(builtIn(t), WithClock(now), WithLocation(time.UTC)).Validate(r, ValidateInput{}).Failures
	if !slices.Equal(wants(fs), []want{e("DATE-002", "appointment_date")}) {
		t.Errorf("UTC calendar: %v", wants(fs))
	}
}

// Registries are swapped while other goroutines validate: every result is
// the whole verdict of the one specification it names. Run with -race.
func TestSetRegistryWhileValidating(t *testing.T) {
	base := builtIn(t)
	// Version 2026.2, in effect from the same day and loaded later, makes
	// an unknown gender code an error.
	doc := variant(t, "apc", "2026.2", "2026-04-01")
	doc = []byte(strings.Replace(string(doc), `{"id": "CODE-003", "severity": "warning"`, `{"id": "CODE-003", "severity": "error"`, 1))
	next, _ := with(t, base, doc)
	v := New(base, WithClock(fixedClock))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen [2]atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := clean(t, apc)
			r.Demographics.PersonGenderCode = "7"
			for !stop.Load() {
				res := v.Validate(r, ValidateInput{Dataset: apc})
				wantSev := dmicv1.Severity_SEVERITY_WARNING
				switch res.Spec.Label() {
				case "apc/2026.1":
					seen[0].Add(1)
				case "apc/2026.2":
					wantSev = dmicv1.Severity_SEVERITY_ERROR
					seen[1].Add(1)
				default:
					t.Errorf("specification %s", res.Spec.Label())
					return
				}
				if len(res.Failures) != 1 || res.Failures[0].GetRuleId() != "CODE-003" || res.Failures[0].GetSeverity() != wantSev {
					t.Errorf("under %s: %v", res.Spec.Label(), wants(res.Failures))
					return
				}
			}
		}()
	}
	// Swap until both versions have been seen in use (the deadline only
	// stops a broken validator from hanging the test). Yielding lets the
	// validating goroutines run between swaps on a loaded machine.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; (i < 2000 || seen[0].Load() == 0 || seen[1].Load() == 0) && time.Now().Before(deadline); i++ {
		if i%2 == 0 {
			v.SetRegistry(next)
		} else {
			v.SetRegistry(base)
		}
		if i%16 < 2 { // after a swap to each
			time.Sleep(10 * time.Microsecond)
		}
	}
	stop.Store(true)
	wg.Wait()
	if seen[0].Load() == 0 || seen[1].Load() == 0 {
		t.Errorf("validated %d under 2026.1 and %d under 2026.2", seen[0].Load(), seen[1].Load())
	}
	v.SetRegistry(next)
	if v.Registry() != next {
		t.Error("Registry is not the one set")
	}
}

// The JSON Schema's required fields (docs/record.schema.json) and the
// provider specifications' mandatory fields agree, dataset by dataset, for
// ordinary records and for deletes.
func TestSchemaRequiredMatchesMandatory(t *testing.T) {
	data, err := os.ReadFile("../../../docs/record.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		OneOf []struct {
			Properties struct {
				Dataset struct {
					Const string `json:"const"`
				} `json:"dataset"`
			} `json:"properties"`
			Required []string `json:"required"`
			If       struct {
				Properties map[string]struct {
					Const string `json:"const"`
				} `json:"properties"`
			} `json:"if"`
			Else struct {
				Required []string `json:"required"`
			} `json:"else"`
		} `json:"oneOf"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if len(schema.OneOf) != 4 {
		t.Fatalf("%d branches", len(schema.OneOf))
	}
	reg := builtIn(t)
	for _, b := range schema.OneOf {
		d, err := record.ParseDataset(b.Properties.Dataset.Const)
		if err != nil {
			t.Fatal(err)
		}
		if b.If.Properties["cds_update_type"].Const != "1" {
			t.Errorf("%s: the delete condition is not cds_update_type = 1", b.Properties.Dataset.Const)
		}
		var mandatory, onDelete []string
		for _, f := range reg.Select(d, provider, fixedNow).Fields() {
			if f.Obligation == ObligationMandatory {
				mandatory = append(mandatory, f.Name)
				if f.Delete {
					onDelete = append(onDelete, f.Name)
				}
			}
		}
		always := slices.DeleteFunc(slices.Clone(b.Required), func(s string) bool { return s == "dataset" })
		full := append(slices.Clone(always), b.Else.Required...)
		for _, c := range []struct {
			got, want []string
			what      string
		}{{always, onDelete, "delete"}, {full, mandatory, "record"}} {
			slices.Sort(c.got)
			slices.Sort(c.want)
			if !slices.Equal(c.got, c.want) {
				t.Errorf("%s %s: schema requires %v, the specification %v", b.Properties.Dataset.Const, c.what, c.got, c.want)
			}
		}
	}
}

// The provider documentation's example records pass without errors.
func TestRecordFormatExamples(t *testing.T) {
	data, err := os.ReadFile("../../../docs/record-format.md")
	if err != nil {
		t.Fatal(err)
	}
	v := New(builtIn(t), WithClock(fixedClock))
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	in, n := false, 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```json":
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			r, d, err := record.DecodeJSON([]byte(line), 0)
			if err != nil {
				t.Fatalf("doc example: %v", err)
			}
			n++
			if fs := v.Validate(r, ValidateInput{Dataset: d}).Failures; HasErrors(fs) {
				t.Errorf("doc example %d (%s) has errors %v", n, record.DatasetName(d), wants(fs))
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d doc examples", n)
	}
}

// docs/specifications.md is what Document writes for the built-in
// specifications; regenerate it with `go run ./cmd/specdoc > ../docs/specifications.md`.
func TestSpecificationsDocUpToDate(t *testing.T) {
	got, err := os.ReadFile("../../../docs/specifications.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := builtIn(t)
	want := Document(reg.List())
	if string(got) != want {
		t.Error("docs/specifications.md is out of date: run `go run ./cmd/specdoc > ../docs/specifications.md` in services/")
	}
	for _, s := range reg.List() {
		for _, r := range s.Rules() {
			if !strings.Contains(want, "| `"+r.ID+"` |") {
				t.Errorf("%s: rule %s is not in the document", s.Label(), r.ID)
			}
		}
	}
	for _, r := range decoderRules {
		if !strings.Contains(want, "| `"+r.id+"` |") {
			t.Errorf("decoder rule %s is not in the document", r.id)
		}
	}
}

type referencePractices struct{ ref *refdata.Reference }

func (p referencePractices) KnownPractice(code string) bool {
	_, ok := p.ref.Practice(code)
	return ok
}

// Records made by synth are clean except for the faults synth injects: each
// bad item fails exactly the rule it was made to break, on its field, and no
// other; every good item (provider or national, revision or delete) passes
// with no failure at all, warnings included.
func TestSynthRecordsMatchInjectedFaults(t *testing.T) {
	ref, err := refdata.LoadDir("../../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	items, err := synth.Generate(synth.Config{
		Seed: 7, Records: 12000,
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes(),
		Datasets: []dmicv1.Dataset{apc, op, ec, lf},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) < 20000 {
		t.Fatalf("only %d items", len(items))
	}
	// After every generated activity date, so nothing is in the future.
	v := New(builtIn(t), WithClock(func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }),
		WithPractices(referencePractices{ref}), WithHRGs(ref))
	var good, bad int
	byRule := map[string]int{}
	for i, it := range items {
		r, d, err := record.DecodeJSON(it.JSON, it.Dataset)
		if err != nil {
			if !slices.Equal(it.Bad, []string{synth.RuleDecode}) {
				t.Errorf("item %d (%v): decode error %v, made to break %v", i, it.Bad, err, it.Bad)
			}
			bad++
			byRule[synth.RuleDecode]++
			continue
		}
		res := v.Validate(r, ValidateInput{Dataset: d, Source: it.Source})
		if len(it.Bad) == 0 {
			good++
			if res.Failures != nil {
				t.Errorf("item %d (%s %v, delete %v, revision %v): good record has failures %v", i, record.DatasetName(d), it.Source, it.Delete, it.Revision, wants(res.Failures))
			}
			continue
		}
		bad++
		got := wants(res.Failures)
		want := []want{e(it.Bad[0], it.BadField)}
		if !slices.Equal(got, want) {
			t.Errorf("item %d (%s): made to break %v on %s, failures %v", i, record.DatasetName(d), it.Bad, it.BadField, got)
		}
		byRule[it.Bad[0]]++
	}
	for _, rule := range []string{synth.RuleNHSModulus11, synth.RuleDOBTooEarly, synth.RuleDOBAfter, synth.RuleRequired, synth.RulePostcode, synth.RuleDecode} {
		if byRule[rule] == 0 {
			t.Errorf("no item was made to break %s", rule)
		}
	}
	t.Logf("%d good and %d bad items", good, bad)
}
