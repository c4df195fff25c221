package match

import (
	"errors"
	"reflect"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// The compared fields are named once and sorted, so that Differences is.
func TestComparedFieldsAreNamedAndSorted(t *testing.T) {
	for i, name := range comparedFields {
		if name == "" {
			t.Errorf("compared field %d has no name", i)
		}
		if i > 0 && comparedFields[i-1] >= name {
			t.Errorf("compared fields not sorted at %q, %q: Differences would not be sorted", comparedFields[i-1], name)
		}
	}
}

// The binary form round-trips every field, and its sequence reads alone.
func TestBinaryRoundTrip(t *testing.T) {
	var f [numCompared]uint64
	f[fHRG], f[fPrice] = 42, 1<<63|7
	cases := []Entry{
		{},
		{Dataset: dmicv1.Dataset_DATASET_APC, Provider: "RXX", ActivityDate: "2026-03-01", Sequence: 300,
			Local: &Side{RecordKey: "RXX|apc|B1", Version: 1 << 40, Fields: f, KeyVersion: "v2"}},
		{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, Sequence: 2,
			National: &Side{RecordKey: "X26|op|B1", Version: 5, Deleted: true}},
		{Sequence: 9, Local: &Side{RecordKey: "a"}, National: &Side{RecordKey: "b", Fields: f}},
	}
	for i, e := range cases {
		b := e.AppendBinary(nil)
		var got Entry
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("case %d: got %+v, want %+v", i, got, e)
		}
		if seq, err := SequenceOf(b); err != nil || seq != e.Sequence {
			t.Errorf("case %d: SequenceOf = %d, %v; want %d", i, seq, err, e.Sequence)
		}
		for cut := 1; cut < len(b); cut++ {
			if err := new(Entry).UnmarshalBinary(b[:cut]); err == nil {
				t.Errorf("case %d: %d of %d bytes decoded without error", i, cut, len(b))
			}
		}
	}
	if err := new(Entry).UnmarshalBinary([]byte(`{"sequence":1}`)); !errors.Is(err, ErrNotBinary) {
		t.Errorf("JSON: err = %v, want ErrNotBinary", err)
	}
}
