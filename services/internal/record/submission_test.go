package record

import (
	"errors"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

func TestFirstLinesPointsRepeatsAtTheFirst(t *testing.T) {
	f := NewFirstLines()
	apcDS, opDS := dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT
	steps := []struct {
		d    dmicv1.Dataset
		uid  string
		line int64
		want int64
	}{
		{apcDS, "B1", 1, 0},
		{apcDS, "B2", 2, 0},
		{apcDS, "B1", 3, 1},
		{opDS, "B1", 4, 0}, // another dataset may use the same id
		{apcDS, "B1", 5, 1},
		{apcDS, "", 6, 0},
		{apcDS, "", 7, 0}, // empty ids are not duplicates of each other
	}
	for _, s := range steps {
		if got := f.See(s.d, s.uid, s.line); got != s.want {
			t.Errorf("line %d (%v %q): first line %d, want %d", s.line, s.d, s.uid, got, s.want)
		}
	}
}

func TestFailureOf(t *testing.T) {
	_, _, err := DecodeJSON([]byte(`{"dataset":"apc","cds_unique_identifier":"B1","nhs_number":true}`), 0)
	f := FailureOf(err)
	if f.RuleId != RuleType || f.Field != "nhs_number" || f.Severity != dmicv1.Severity_SEVERITY_ERROR || f.Message == "" {
		t.Errorf("FailureOf(type error) = %v", f)
	}
	if g := FailureOf(errors.New("boom")); g.RuleId != RuleJSON || g.Message == "boom" {
		t.Errorf("FailureOf(other) = %v, want DEC-JSON with a fixed message", g)
	}
}
