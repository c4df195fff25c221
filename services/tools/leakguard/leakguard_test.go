package leakguard_test

import (
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/tools/leakguard"
)

func TestScanTextFindsEveryKindAndNeverQuotesIt(t *testing.T) {
	ids := leakguard.NewIdentifiers([]leakguard.Patient{
		{NHSNumber: "9434765919", Postcode: "SW1A 1AA", BirthDate: "1970-03-14", LocalPatientID: "LPI0000001"},
		{BirthDate: "2025-06-01", LocalPatientID: "A1"}, // too recent / too short to look for
	}, "2024-01-01")
	if ids.Len() != 5 {
		t.Fatalf("looking for %d values, want 5 (NHS number, postcode with and without space, date of birth, local id)", ids.Len())
	}
	for _, tc := range []struct {
		text string
		kind string
	}{
		{`{"pseudo":"9434765919"}`, "NHS number"},
		{"area SW1A1AA", "postcode"},
		{"area SW1A 1AA", "postcode"},
		{"born 1970-03-14", "date of birth"},
		{"id=LPI0000001", "local patient id"},
	} {
		fs := ids.ScanText("here", tc.text)
		if len(fs) == 0 || fs[0].Kind != tc.kind || fs[0].Where != "here" {
			t.Errorf("%q: findings %v, want a %s", tc.text, fs, tc.kind)
		}
		for _, f := range fs {
			if strings.Contains(f.String(), "9434765919") || strings.Contains(f.String(), "SW1A") || strings.Contains(f.String(), "1970") {
				t.Errorf("finding %q quotes the value", f)
			}
		}
	}
	if fs := ids.ScanText("here", "2025-06-01 A1 nothing to see"); len(fs) != 0 {
		t.Errorf("clean text: findings %v", fs)
	}
	if n := ids.Count("9434765919 and 1970-03-14"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}
