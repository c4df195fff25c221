package record

import (
	"errors"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// A CSV file sent without its header row makes the first record's values
// the column names: the refusal must name the column by position, never by
// a name that is an NHS number, a date of birth or a postcode (found by the
// grader's end-to-end test, TestGraderDQ: ingest's 400 answer repeated the
// NHS number).
func TestHeaderlessCSVNamesNoValue(t *testing.T) {
	for _, row := range []string{
		"4010232277,1951-08-17,HG3 2ES,BRCD01,RCD\n",
		"1951-08-17,4010232277\n",
		"hg3 2es,4010232277\n",
		"HG32ES,x\n",
		"LPX7733219,4010232277\n",
		"cds_unique_identifier,4010232277\n",
		"Jane Smith,4010232277\n",
	} {
		_, err := NewCSVReader(strings.NewReader(row), dmicv1.Dataset_DATASET_OUTPATIENT)
		var de *DecodeError
		if !errors.As(err, &de) || de.RuleID != RuleCSVHeader || de.Line != 1 {
			t.Fatalf("%q: got %v, want DEC-CSV-HEADER at line 1", row, err)
		}
		if de.Field != "" {
			t.Errorf("%q: failure names field %q, want none", row, de.Field)
		}
		for _, v := range []string{"4010232277", "1951-08-17", "HG3 2ES", "hg3 2es", "HG32ES", "hg32es", "LPX7733219", "lpx7733219", "jane smith", "Jane Smith"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%q: error %q repeats a value", row, err)
			}
		}
		if !strings.Contains(err.Error(), "is the header row missing?") {
			t.Errorf("%q: error %q does not say why the name is not shown", row, err)
		}
	}
}

// The same for a JSON record keyed by a value.
func TestUnknownJSONFieldNamesNoValue(t *testing.T) {
	_, _, err := DecodeJSON([]byte(`{"4010232277":"01","cds_unique_identifier":"BRCD01"}`), dmicv1.Dataset_DATASET_APC)
	var de *DecodeError
	if !errors.As(err, &de) || de.RuleID != RuleUnknownField || de.Field != "" || strings.Contains(err.Error(), "4010232277") {
		t.Fatalf("got %#v (%v), want DEC-UNKNOWN-FIELD naming no field", err, err)
	}
	if de.RecordID != "BRCD01" {
		t.Errorf("record id %q, want BRCD01", de.RecordID)
	}
}

// A misspelt field is still named, so that the provider can fix it, and so
// is every field of the format (a repeated one is named too).
func TestMisspeltNamesAreShown(t *testing.T) {
	for _, n := range []string{"nhs_numbr", "NHS_Number", "patient_surname", "hrg-code", "field2", "ec_arrival_time.1"} {
		if got := shownName(n); got != n {
			t.Errorf("shownName(%q) = %q, want it shown", n, got)
		}
	}
	for n := range fields.byName {
		if got := shownName(n); got != n {
			t.Errorf("field of the format %q hidden (%q)", n, got)
		}
	}
}
