package ingest_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/record/recordtest"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// limitLines are records at the record limit and one byte either side, then
// a small good one: the limit refuses only the one above it, by line.
func limitLines(t *testing.T) []string {
	return []string{
		recordtest.OutpatientOfSize(t, "BRXXL1", limits.MaxRecordBytes-1),
		recordtest.OutpatientOfSize(t, "BRXXL2", limits.MaxRecordBytes),
		recordtest.OutpatientOfSize(t, "BRXXL3", limits.MaxRecordBytes+1),
		recordtest.Outpatient("BRXXL4"),
	}
}

func checkLimitAnswer(t *testing.T, f *fixture, resp *dmicv1.SubmitRecordsResponse) {
	t.Helper()
	if resp.Accepted != 3 || resp.Rejected != 1 {
		t.Fatalf("accepted %d, rejected %d; want 3 and 1", resp.Accepted, resp.Rejected)
	}
	for _, r := range resp.Results {
		if r.LineNumber == 3 {
			if r.Accepted || len(r.Failures) != 1 || r.Failures[0].RuleId != record.RuleTooLong ||
				!strings.Contains(r.Failures[0].Message, strconv.Itoa(limits.MaxRecordBytes)) {
				t.Errorf("line 3 (one byte over) = %v, want %s naming the limit", r, record.RuleTooLong)
			}
		} else if !r.Accepted {
			t.Errorf("line %d refused: %v", r.LineNumber, r.Failures)
		}
	}
	for _, m := range read(t, f.admin, topics.Raw, 3) {
		if len(m.Value) > limits.MaxRecordBytes {
			t.Errorf("a %d-byte record reached %s", len(m.Value), topics.Raw)
		}
	}
}

// TestRecordLimitOverHTTP: limits.MaxRecordBytes, and one byte either side,
// through the HTTP door (issue 10).
func TestRecordLimitOverHTTP(t *testing.T) {
	f := newFixture(t)
	code, resp, raw := f.post(t, "dataset=outpatient&submitter=RXX", "application/x-ndjson", strings.Join(limitLines(t), "\n")+"\n")
	if code != 200 {
		t.Fatalf("status %d: %.300s", code, raw)
	}
	checkLimitAnswer(t, f, resp)
}

// TestRecordLimitOverGRPC: the same records as gRPC json_records.
func TestRecordLimitOverGRPC(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := f.grpcClient(t, f.rxx).SubmitRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range limitLines(t) {
		req := &dmicv1.SubmitRecordsRequest{JsonRecords: []string{line}}
		if i == 0 {
			req.Dataset, req.SubmitterOrgCode = dmicv1.Dataset_DATASET_OUTPATIENT, "RXX"
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	checkLimitAnswer(t, f, resp)
}
