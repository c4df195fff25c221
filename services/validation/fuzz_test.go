package validation

import (
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/record"
	"google.golang.org/protobuf/proto"
)

// allMessages is every failure message; a message outside it could hold a
// value of the record.
var allMessages = map[string]bool{
	msgRequired: true, msgNHSFormat: true, msgNHSCheckDigit: true, msgNHSRepeated: true, msgNHSMissing: true,
	msgBirthFormat: true, msgBirthEarly: true, msgBirthAfter: true, msgDateFormat: true, msgDateFuture: true,
	msgEpisodeOrder: true, msgApplicable: true, msgArrivalTime: true, msgPostcode: true, msgProvider: true,
	msgPractice: true, msgAdmissionMethod: true, msgAttended: true, msgGender: true, msgAdminCategory: true,
	msgCDSType: true, msgDepartmentType: true, msgUniqueIdentifier: true,
}

// FuzzValidate decodes provider JSON and validates it: no panic, failures are
// complete, use fixed messages, and Validate neither changes the record nor
// answers differently the second time.
func FuzzValidate(f *testing.F) {
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		out, err := record.EncodeJSON(d, clean(f, d))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out, uint8(d))
	}
	v := testValidator()
	f.Fuzz(func(t *testing.T, data []byte, asDataset uint8) {
		r, d, err := record.DecodeJSON(data, dmicv1.Dataset(asDataset%5))
		if err != nil {
			return
		}
		// Validate also under a dataset other than the record's own.
		for _, vd := range []dmicv1.Dataset{d, dmicv1.Dataset(asDataset % 6)} {
			before := proto.Clone(r)
			fs := v.Validate(vd, r)
			if !proto.Equal(before, r) {
				t.Fatal("Validate changed the record")
			}
			again := v.Validate(vd, r)
			if len(again) != len(fs) {
				t.Fatalf("second Validate gave %d failures, first %d", len(again), len(fs))
			}
			hasErr := false
			for i, x := range fs {
				if x.GetRuleId() == "" || x.GetField() == "" || x.GetSeverity() == dmicv1.Severity_SEVERITY_UNSPECIFIED {
					t.Fatalf("incomplete failure %v", x)
				}
				if !allMessages[x.GetMessage()] {
					t.Fatalf("message %q is not one of the fixed messages", x.GetMessage())
				}
				if !proto.Equal(x, again[i]) {
					t.Fatalf("failure %d differs between runs", i)
				}
				hasErr = hasErr || x.GetSeverity() == dmicv1.Severity_SEVERITY_ERROR
			}
			if HasErrors(fs) != hasErr {
				t.Fatal("HasErrors disagrees with the severities")
			}
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	v := testValidator()
	var recs []*dmicv1.CommissioningRecord
	var ds []dmicv1.Dataset
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		recs = append(recs, clean(b, d))
		ds = append(ds, d)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if fs := v.Validate(ds[i%4], recs[i%4]); fs != nil {
			b.Fatal(fs)
		}
	}
}

func BenchmarkValidateFailing(b *testing.B) {
	v := testValidator()
	r := clean(b, apc)
	r.Patient.NhsNumber = "9434765918"
	r.Patient.PostcodeOfUsualAddress = "Q1 1AA"
	b.ReportAllocs()
	for b.Loop() {
		if fs := v.Validate(apc, r); len(fs) != 2 {
			b.Fatal(fs)
		}
	}
}

func BenchmarkNormalisePostcode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := NormalisePostcode("sw1a1aa"); !ok {
			b.Fatal("invalid")
		}
	}
}
