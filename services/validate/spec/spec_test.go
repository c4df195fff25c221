package spec

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// miniSpec is a small sound specification to break in the tests.
func miniSpec() *Specification {
	return &Specification{
		ID: "mini", Title: "Mini", Version: "1", EffectiveFrom: "2026-04-01", Source: "provider", Datasets: []string{"apc"},
		CodeLists: map[string]CodeList{"cds_type": {Title: "CDS TYPE", Source: "test", Codes: map[string]string{"130": "general episode"}}},
		Fields: []FieldSpec{
			{Name: "cds_unique_identifier", Item: "CDS UNIQUE IDENTIFIER", Type: "string", Format: "an35", Obligation: "mandatory", Delete: true},
			{Name: "cds_type", Item: "CDS TYPE", Type: "string", Format: "an3", Obligation: "required", CodeList: "cds_type"},
			{Name: "end_date_episode", Item: "END DATE (EPISODE)", Type: "string", Format: "date", Obligation: "optional"},
		},
		Rules: []RuleSpec{
			{ID: "REQ-001", Severity: "error", Check: "mandatory", Message: "mandatory field is missing"},
			{ID: "REQ-002", Severity: "warning", Check: "required", Message: "required field is missing"},
			{ID: "CODE-005", Severity: "error", Check: "code_list", Fields: []string{"cds_type"}, Message: "not a CDS TYPE", Params: &Params{CodeList: "cds_type"}},
			{ID: "DATE-001", Severity: "error", Check: "format", Fields: []string{"end_date_episode"}, Message: "not a date", Params: &Params{Format: "date"}},
		},
	}
}

func marshal(t *testing.T, s *Specification) []byte {
	t.Helper()
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestCompileMiniSpec(t *testing.T) {
	s, err := Compile(marshal(t, miniSpec()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Label() != "mini/1" || s.Source() != provider || !slices.Equal(s.Datasets(), []dmicv1.Dataset{apc}) || s.EffectiveFrom() != "2026-04-01" {
		t.Errorf("compiled %s %v %v %s", s.Label(), s.Source(), s.Datasets(), s.EffectiveFrom())
	}
	if len(s.Rules()) != 4 || s.Rules()[2].Severity != dmicv1.Severity_SEVERITY_ERROR || s.Rules()[1].Severity != dmicv1.Severity_SEVERITY_WARNING {
		t.Errorf("rules %+v", s.Rules())
	}
	reg, _, created, err := (&Registry{}).With(marshal(t, miniSpec()), OriginLoaded, fixedNow)
	if err != nil || !created {
		t.Fatal(err, created)
	}
	v := New(reg, WithClock(fixedClock))
	r := &recT{CdsUniqueIdentifier: "B1", Activity: &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "999", EndDateEpisode: "2026-02-30"}}}
	res := v.Validate(r, ValidateInput{})
	if got := wants(res.Failures); !slices.Equal(got, []want{e("CODE-005", "cds_type"), e("DATE-001", "end_date_episode")}) || res.Spec.Label() != "mini/1" {
		t.Errorf("mini spec failures %v (%s)", got, res.Spec.Label())
	}
	r.GetApc().CdsType = ""
	r.CdsUniqueIdentifier = ""
	r.GetApc().EndDateEpisode = ""
	if got := wants(v.Validate(r, ValidateInput{}).Failures); !slices.Equal(got, []want{e("REQ-001", "cds_unique_identifier"), w("REQ-002", "cds_type")}) {
		t.Errorf("mini spec obligations %v", got)
	}
}

func TestCompileProblems(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(s *Specification)
		want   string
	}{
		{"unknown check", func(s *Specification) { s.Rules[3].Check = "date_valid" }, `rule "DATE-001": unknown check "date_valid"`},
		{"unknown field", func(s *Specification) { s.Rules[3].Fields = []string{"end_date_episod"} }, `rule "DATE-001": field "end_date_episod" is not declared`},
		{"unknown code list", func(s *Specification) { s.Rules[2].Params.CodeList = "cds_types" }, `rule "CODE-005": unknown code list "cds_types"`},
		{"field's unknown code list", func(s *Specification) { s.Fields[1].CodeList = "cds_types" }, `field "cds_type": unknown code list "cds_types"`},
		{"duplicate rule id", func(s *Specification) { s.Rules[3].ID = "CODE-005" }, `rule "CODE-005": id used by more than one rule`},
		{"bad severity", func(s *Specification) { s.Rules[2].Severity = "fatal" }, `rule "CODE-005": severity "fatal"`},
		{"missing version", func(s *Specification) { s.Version = "" }, `version "": must be`},
		{"missing effective date", func(s *Specification) { s.EffectiveFrom = "" }, `effective_from "": must be a date`},
		{"bad effective date", func(s *Specification) { s.EffectiveFrom = "2026-02-30" }, `effective_from "2026-02-30"`},
		{"missing title", func(s *Specification) { s.Title = "" }, `title: missing`},
		{"bad source", func(s *Specification) { s.Source = "sus" }, `source "sus"`},
		{"dataset alias", func(s *Specification) { s.Datasets = []string{"op"} }, `unknown dataset "op"`},
		{"no datasets", func(s *Specification) { s.Datasets = nil }, `datasets: at least one`},
		{"bad obligation", func(s *Specification) { s.Fields[2].Obligation = "conditional" }, `field "end_date_episode": obligation "conditional"`},
		{"bad type", func(s *Specification) { s.Fields[2].Type = "date" }, `field "end_date_episode": type "date"`},
		{"integer that is text", func(s *Specification) { s.Fields[2].Type = "integer" }, `field "end_date_episode": type "integer" is not the record format's`},
		{"field not in the record format", func(s *Specification) {
			s.Fields = append(s.Fields, FieldSpec{Name: "appointment_date", Type: "string", Obligation: "optional"})
		}, `field "appointment_date": the record format has no such field in dataset apc`},
		{"field declared twice", func(s *Specification) { s.Fields = append(s.Fields, s.Fields[2]) }, `field "end_date_episode": declared twice`},
		{"missing param", func(s *Specification) { s.Rules[3].Params = nil }, `check format needs param "format"`},
		{"unused param", func(s *Specification) { s.Rules[3].Params.Date = "1880-01-01" }, `check format does not use param "date"`},
		{"unknown format", func(s *Specification) { s.Rules[3].Params.Format = "datum" }, `unknown format "datum"`},
		{"digits without length", func(s *Specification) { s.Rules[3].Params.Format = "digits" }, `format digits needs a positive param "length"`},
		{"length without digits", func(s *Specification) { s.Rules[3].Params.Length = 3 }, `param "length" is only for format digits`},
		{"pair with one field", func(s *Specification) {
			s.Rules = append(s.Rules, RuleSpec{ID: "DATE-003", Severity: "error", Check: "date_order", Fields: []string{"end_date_episode"}, Message: "m"})
		}, `rule "DATE-003": check date_order compares two fields; 1 named`},
		{"per-field check with no field", func(s *Specification) { s.Rules[3].Fields = nil }, `rule "DATE-001": check format needs at least one field`},
		{"report field not an operand", func(s *Specification) { s.Rules[3].ReportField = "cds_type" }, `report_field "cds_type"`},
		{"obligation rule naming a field of another obligation", func(s *Specification) { s.Rules[0].Fields = []string{"cds_type"} }, `rule "REQ-001": field "cds_type" is required, not mandatory`},
		{"mandatory field unchecked", func(s *Specification) { s.Rules = s.Rules[1:] }, `field "cds_unique_identifier": mandatory in dataset apc, but no mandatory rule checks it`},
		{"two catch-all rules", func(s *Specification) {
			s.Rules = append(s.Rules, RuleSpec{ID: "REQ-003", Severity: "warning", Check: "required", Message: "m"})
		}, `rule "REQ-003": rule "REQ-002" already checks every required field`},
		{"code list not checked", func(s *Specification) { s.Rules = slices.Delete(s.Rules, 2, 3) }, `field "cds_type": declares code list "cds_type", but no code_list rule checks it`},
		{"code list differs from the field's", func(s *Specification) {
			s.CodeLists["other"] = CodeList{Title: "Other", Codes: map[string]string{"1": "one"}}
			s.Rules[2].Params.CodeList = "other"
		}, `field "cds_type" declares code list "cds_type", the rule checks "other"`},
		{"unused code list", func(s *Specification) {
			s.CodeLists["spare"] = CodeList{Title: "Spare", Codes: map[string]string{"1": "one"}}
		}, `code list "spare": not used`},
		{"empty code list", func(s *Specification) { s.CodeLists["cds_type"] = CodeList{Title: "CDS TYPE"} }, `code list "cds_type": no codes`},
		{"text check on an integer", func(s *Specification) {
			s.Datasets = []string{"local_flow"}
			s.Fields = append(s.Fields[:1], FieldSpec{Name: "price_pence", Type: "integer", Obligation: "optional"})
			s.CodeLists = nil
			s.Rules = []RuleSpec{s.Rules[0], {ID: "LF-001", Severity: "warning", Check: "format", Fields: []string{"price_pence"}, Message: "m", Params: &Params{Format: "digits", Length: 3}}}
		}, `check format reads text; field "price_pence" is a whole number`},
		{"integer field mandatory", func(s *Specification) {
			s.Datasets = []string{"local_flow"}
			s.Fields = append(s.Fields[:1], FieldSpec{Name: "activity_count", Type: "integer", Obligation: "mandatory"})
			s.CodeLists = nil
			s.Rules = s.Rules[:1]
		}, `field "activity_count": an integer field cannot be mandatory`},
		{"unless_failed of a later rule", func(s *Specification) { s.Rules[2].UnlessFailed = []string{"DATE-001"} }, `unless_failed names "DATE-001", which is not an earlier rule`},
		{"rule dataset not the spec's", func(s *Specification) { s.Rules[3].Datasets = []string{"outpatient"} }, `dataset "outpatient" is not one of the specification's datasets`},
		{"when on an undeclared field", func(s *Specification) { s.Rules[2].When = &Condition{Field: "cds_typ", In: []string{"130"}} }, `when: field "cds_typ" is not declared for dataset apc`},
		{"when with no values", func(s *Specification) { s.Rules[2].When = &Condition{Field: "cds_type"} }, `when names no values of "cds_type"`},
		{"field only some datasets have, rule not restricted", func(s *Specification) {
			s.Datasets = []string{"apc", "outpatient"}
			s.Rules = append(s.Rules, RuleSpec{ID: "DATE-003", Severity: "error", Check: "date_order", Fields: []string{"end_date_episode", "end_date_episode"}, Message: "m"})
			s.Fields[1].Datasets = []string{"apc"}
			s.Fields[2].Datasets = []string{"apc"}
			s.Rules[2].Datasets = []string{"apc"}
		}, `rule "DATE-003": field "end_date_episode" is not declared for dataset outpatient`},
		{"field the dataset's records carry, not declared", func(s *Specification) {
			s.Datasets = []string{"apc", "outpatient"}
			s.Fields = append(s.Fields, FieldSpec{Name: "hrg_code", Type: "string", Obligation: "optional", Datasets: []string{"apc"}})
			s.Rules = append(s.Rules, RuleSpec{ID: "CLIN-003", Severity: "error", Check: "format", Fields: []string{"hrg_code"}, Message: "m", Params: &Params{Format: "hrg"}})
			s.Fields[1].Datasets = []string{"apc"}
			s.Fields[2].Datasets = []string{"apc"}
			s.Rules[2].Datasets = []string{"apc"}
		}, `rule "CLIN-003": field "hrg_code" is not declared for dataset outpatient`},
		{"empty message", func(s *Specification) { s.Rules[3].Message = " " }, `rule "DATE-001": message missing`},
		{"bad rule id", func(s *Specification) { s.Rules[3].ID = "date1" }, `rule "date1": id must look like`},
		{"nhs_status number", func(s *Specification) {
			s.Fields = append(s.Fields, FieldSpec{Name: "nhs_number", Type: "string", Obligation: "optional"},
				FieldSpec{Name: "nhs_number_status_indicator_code", Type: "string", Obligation: "optional"})
			s.Rules = append(s.Rules, RuleSpec{ID: "NHS-004", Severity: "error", Check: "nhs_status", Fields: []string{"nhs_number", "nhs_number_status_indicator_code"},
				Message: "m", Params: &Params{Statuses: []string{"01"}, Number: "absent"}})
		}, `param "number" "absent" must be "missing" or "present"`},
	}
	var all []func(*Specification)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := miniSpec()
			tt.break_(s)
			_, err := Compile(marshal(t, s))
			if err == nil {
				t.Fatal("compiled")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
			var se *SpecError
			if !errors.As(err, &se) || len(se.Problems) == 0 {
				t.Errorf("not a *SpecError with problems: %T", err)
			}
		})
	}
	// The list, all at once: one error names every problem.
	for _, name := range []string{"unknown check", "unknown field", "unknown code list", "duplicate rule id", "bad severity", "missing version", "missing effective date"} {
		for _, tt := range tests {
			if tt.name == name {
				all = append(all, tt.break_)
			}
		}
	}
	s := miniSpec()
	s.Rules = append(s.Rules, RuleSpec{ID: "CLIN-003", Severity: "error", Check: "format", Fields: []string{"hrg"}, Message: "m", Params: &Params{Format: "hrg"}})
	for _, f := range all {
		f(s)
	}
	_, err := Compile(marshal(t, s))
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("not a *SpecError: %v", err)
	}
	for _, want := range []string{`unknown check "date_valid"`, `field "hrg" is not declared`, `unknown code list "cds_types"`,
		`rule "CODE-005": id used by more than one rule`, `severity "fatal"`, `version "": must be`, `effective_from "": must be a date`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("combined error does not say %q:\n%v", want, err)
		}
	}
	if len(se.Problems) < 7 {
		t.Errorf("%d problems reported", len(se.Problems))
	}
}

func TestParseIsStrict(t *testing.T) {
	good := string(marshal(t, miniSpec()))
	if _, err := ParseSpecification([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"unknown key":          strings.Replace(good, `"id":`, `"identifier":"x","id":`, 1),
		"unknown rule key":     strings.Replace(good, `"check":"mandatory"`, `"check":"mandatory","level":"high"`, 1),
		"unknown param":        strings.Replace(good, `"params":{"format":"date"}`, `"params":{"format":"date","strict":true}`, 1),
		"trailing data":        good + `{}`,
		"wrong type":           strings.Replace(good, `"datasets":["apc"]`, `"datasets":"apc"`, 1),
		"not JSON":             `id: apc`,
		"empty":                ``,
		"semantic (bad level)": strings.Replace(good, `"severity":"warning"`, `"severity":"info"`, 1),
	} {
		if doc == good {
			t.Fatalf("%s: the document did not change", name)
		}
		if _, err := ParseSpecification([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
		if _, err := Compile([]byte(doc)); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}

func TestBuiltInSpecifications(t *testing.T) {
	reg := builtIn(t)
	type row struct {
		label, source string
		datasets      []dmicv1.Dataset
	}
	var got []row
	for _, s := range reg.List() {
		got = append(got, row{s.Label(), s.doc.Source, s.Datasets()})
		if s.Version() != "2026.1" || s.EffectiveFrom() != "2026-04-01" || s.Origin() != OriginBuiltIn || !s.LoadedTime().IsZero() {
			t.Errorf("%s: version %s, effective %s, origin %q, loaded %v", s.Label(), s.Version(), s.EffectiveFrom(), s.Origin(), s.LoadedTime())
		}
		if len(s.SHA256()) != 64 || len(s.Document()) == 0 || s.Title() == "" {
			t.Errorf("%s: sha %q, %d bytes, title %q", s.Label(), s.SHA256(), len(s.Document()), s.Title())
		}
		// Every field of the record format is declared, for the documentation.
		for _, d := range s.Datasets() {
			var declared []string
			for _, f := range s.Fields() {
				if slices.Contains(f.Datasets, d) {
					declared = append(declared, f.Name)
				}
			}
			for _, name := range record.FieldNames(d) {
				if name != "dataset" && !slices.Contains(declared, name) {
					t.Errorf("%s: field %s of dataset %s is not declared", s.Label(), name, record.DatasetName(d))
				}
			}
		}
	}
	want := []row{
		{"apc/2026.1", "provider", []dmicv1.Dataset{apc}},
		{"emergency_care/2026.1", "provider", []dmicv1.Dataset{ec}},
		{"local_flow/2026.1", "provider", []dmicv1.Dataset{lf}},
		{"national/2026.1", "national", []dmicv1.Dataset{apc, op, ec}},
		{"outpatient/2026.1", "provider", []dmicv1.Dataset{op}},
	}
	if !slices.EqualFunc(got, want, func(a, b row) bool {
		return a.label == b.label && a.source == b.source && slices.Equal(a.datasets, b.datasets)
	}) {
		t.Errorf("built-in specifications\n got %v\nwant %v", got, want)
	}
}

// The national extract rejects only on identity and structure: every other
// rule of the national specification is a warning.
func TestNationalErrorsAreIdentityAndStructure(t *testing.T) {
	reg := builtIn(t)
	s, ok := reg.Get("national", "2026.1")
	if !ok {
		t.Fatal("no national/2026.1")
	}
	var errs []string
	for _, r := range s.Rules() {
		if r.Severity == dmicv1.Severity_SEVERITY_ERROR {
			errs = append(errs, r.ID)
		}
	}
	want := []string{"REQ-001", "CDS-001", "CDS-004", "PID-001", "DUP-001", "ORG-001", "DATE-004", "NHS-001", "NHS-002", "NHS-003", "DOB-001",
		"DATE-001", "DATE-003", "DATE-005", "DATE-006", "DATE-007"}
	if !slices.Equal(errs, want) {
		t.Errorf("national errors\n got %v\nwant %v", errs, want)
	}
	var mandatory []string
	for _, f := range s.Fields() {
		if f.Obligation == ObligationMandatory {
			mandatory = append(mandatory, f.Name)
		}
	}
	if want := []string{"cds_unique_identifier", "provider_code", "start_date_episode", "appointment_date", "ec_arrival_date"}; !slices.Equal(mandatory, want) {
		t.Errorf("national mandatory fields %v, want %v", mandatory, want)
	}
}

// Rule ids keep their meaning across the specifications: the same id has the
// same check in every built-in specification.
func TestRuleIDsMeanOneThing(t *testing.T) {
	checks := map[string]string{}
	for _, s := range builtIn(t).List() {
		for _, r := range s.Rules() {
			if c, ok := checks[r.ID]; ok && c != r.Check {
				t.Errorf("%s: %s checks %s here, %s elsewhere", s.Label(), r.ID, r.Check, c)
			}
			checks[r.ID] = r.Check
		}
	}
}
