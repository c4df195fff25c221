package spec

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// FuzzValidate decodes provider JSON and validates it. sel picks the dataset
// the submission names (sel % 5), the dataset validated against as well as
// the record's own (sel % 6, which includes one no specification covers),
// the source (sel / 5 % 3) and whether the record id is a duplicate
// (sel / 15 % 2). No panic; failures are complete, carry only the
// specifications' fixed messages and the severity their rule has; Validate
// changes nothing but the postcode's form and answers the same the second
// time.
func FuzzValidate(f *testing.F) {
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		f.Add([]byte(cleanLines[d]), uint8(d))
	}
	reg := builtIn(f)
	messages := map[string]bool{msgNoSpec: true}
	for _, s := range reg.List() {
		for _, m := range s.Messages() {
			messages[m] = true
		}
	}
	v := New(reg, WithClock(fixedClock), WithLocation(time.UTC), WithPractices(practiceSet{"H85001": true}))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		r, d, err := record.DecodeJSON(data, dmicv1.Dataset(sel%5))
		if err != nil {
			return
		}
		in := ValidateInput{Source: dmicv1.Source(sel / 5 % 3), DuplicateOfLine: int64(sel / 15 % 2)}
		for _, vd := range []dmicv1.Dataset{d, dmicv1.Dataset(sel % 6)} {
			in.Dataset = vd
			want := proto.Clone(r).(*recT)
			res := v.Validate(r, in)
			if res.Spec != nil {
				if pc, ok := nhs.NormalisePostcode(want.GetPatient().GetPostcodeOfUsualAddress()); ok {
					want.Patient.PostcodeOfUsualAddress = pc
				}
			}
			if !proto.Equal(want, r) {
				t.Fatal("Validate changed the record beyond the postcode's form")
			}
			again := v.Validate(r, in)
			if again.Spec != res.Spec || len(again.Failures) != len(res.Failures) {
				t.Fatalf("second Validate gave %d failures, first %d", len(again.Failures), len(res.Failures))
			}
			var rules []RuleInfo
			if res.Spec != nil {
				rules = res.Spec.Rules()
			}
			hasErr := false
			for i, x := range res.Failures {
				if x.GetRuleId() == "" || x.GetField() == "" || x.GetSeverity() == dmicv1.Severity_SEVERITY_UNSPECIFIED {
					t.Fatalf("incomplete failure %v", x)
				}
				if !messages[x.GetMessage()] {
					t.Fatalf("message %q is not a specification's", x.GetMessage())
				}
				if !proto.Equal(x, again.Failures[i]) {
					t.Fatalf("failure %d differs between runs", i)
				}
				if res.Spec == nil {
					if x.GetRuleId() != RuleNoSpec {
						t.Fatalf("failure %s without a specification", x.GetRuleId())
					}
				} else if i := slices.IndexFunc(rules, func(ri RuleInfo) bool { return ri.ID == x.GetRuleId() }); i < 0 ||
					rules[i].Severity != x.GetSeverity() || rules[i].Message != x.GetMessage() {
					t.Fatalf("failure %v is not a rule of %s as written", x, res.Spec.Label())
				}
				hasErr = hasErr || x.GetSeverity() == dmicv1.Severity_SEVERITY_ERROR
			}
			if HasErrors(res.Failures) != hasErr {
				t.Fatal("HasErrors disagrees with the severities")
			}
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	v := testValidator(b, WithPractices(practiceSet{"H85001": true, "H85020": true}))
	var recs []*recT
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		recs = append(recs, clean(b, d))
	}
	in := ValidateInput{Source: provider, Received: fixedNow}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if fs := v.Validate(recs[i%4], in).Failures; fs != nil {
			b.Fatal(fs)
		}
	}
}

func BenchmarkValidateFailing(b *testing.B) {
	v := testValidator(b)
	r := clean(b, apc)
	r.Patient.NhsNumber = "9434765918"
	r.Patient.PostcodeOfUsualAddress = "Q1 1AA"
	in := ValidateInput{Dataset: apc}
	b.ReportAllocs()
	for b.Loop() {
		if fs := v.Validate(r, in).Failures; len(fs) != 2 {
			b.Fatal(fs)
		}
	}
}
