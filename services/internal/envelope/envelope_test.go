package envelope

import (
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

func TestHeadersRoundTrip(t *testing.T) {
	in := Raw{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, Source: dmicv1.Source_SOURCE_NATIONAL, Submitter: "X26",
		SubmissionID: "sub-1", Received: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Line: 7, Traceparent: "00-abc-def-01",
		DuplicateOfLine: 3}
	out, err := ParseHeaders(in.Headers())
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func TestParseHeadersDefaultsAndErrors(t *testing.T) {
	r, err := ParseHeaders(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != dmicv1.Source_SOURCE_PROVIDER || r.Dataset != dmicv1.Dataset_DATASET_UNSPECIFIED {
		t.Errorf("no headers: %+v, want provider source and no dataset", r)
	}
	for _, h := range []pipeline.Header{
		{Key: HeaderDataset, Value: []byte("dentistry")},
		{Key: HeaderSource, Value: []byte("somebody")},
		{Key: HeaderReceived, Value: []byte("yesterday")},
		{Key: HeaderLine, Value: []byte("x")},
		{Key: HeaderDuplicateOf, Value: []byte("0")},
		{Key: HeaderDuplicateOf, Value: []byte("three")},
	} {
		if _, err := ParseHeaders([]pipeline.Header{h}); err == nil {
			t.Errorf("header %s=%s accepted", h.Key, h.Value)
		}
	}
}

func TestVersionOrdersByApplicableTimeThenOffset(t *testing.T) {
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Second)
	if !(Version(t1, 999) < Version(t2, 0)) {
		t.Error("a later applicable time must win over a higher offset")
	}
	if !(Version(t1, 5) < Version(t1, 6)) {
		t.Error("the offset must break ties")
	}
	if Version(t1, 5) != Version(t1, 5) {
		t.Error("a replay must have the same version")
	}
}

func TestHeaderDefaultsForRawTopicRecords(t *testing.T) {
	rec := &dmicv1.CommissioningRecord{CdsUniqueIdentifier: "BRXX1", ProviderCode: "rxx"}
	m := pipeline.Message{Topic: "dmic.raw", Partition: 2, Offset: 41, Time: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
	h, err := Header(Raw{Dataset: dmicv1.Dataset_DATASET_APC, Source: dmicv1.Source_SOURCE_PROVIDER}, rec, m, "spec-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.RecordKey != "RXX|apc|BRXX1" || h.SubmissionId != "kafka-dmic.raw-2-41" || h.Version != Version(m.Time, 41) {
		t.Errorf("header = %v", h)
	}
	rec.ApplicableDateTime = "not a time"
	if _, err := Header(Raw{Dataset: dmicv1.Dataset_DATASET_APC}, rec, m, "spec-1"); err == nil {
		t.Error("bad applicable date/time accepted")
	}
}

// The message timestamp says when a raw record was received; the header
// only refines it, to ingest's sub-millisecond receipt, when both name the
// same millisecond. A header naming another time is a producer's claim.
func TestReceivedIsTheMessageTimestamp(t *testing.T) {
	receipt := time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.UTC)
	// What the broker gives back: milliseconds, in the reader's location.
	stamped := time.UnixMilli(receipt.UnixMilli())
	forged := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header time.Time
		msg    time.Time
		want   time.Time
		ok     bool
	}{
		{"ingest: header and timestamp agree", receipt, stamped, receipt, true},
		{"forged header", forged, stamped, stamped, true},
		{"header a millisecond off", receipt.Add(time.Millisecond), stamped, stamped, true},
		{"no header", time.Time{}, stamped, stamped, true},
		{"no timestamp", forged, time.Time{}, time.Time{}, false},
		{"timestamp -1 (none, as kafka-go reads it)", forged, time.UnixMilli(-1), time.Time{}, false},
	} {
		got, ok := Received(Raw{Received: tc.header}, pipeline.Message{Time: tc.msg})
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
