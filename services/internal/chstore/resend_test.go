package chstore

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

// attempt writes what one attempt to store a submission leaves in the
// tables, as the pipeline writes it: ingest's start receipt; the verdict on
// each of the first `stored` lines, and a dead letter for each even line
// (NHS-002), read from raw offsets of this attempt and judged a minute
// after the previous attempt; and, when end is not unspecified, the
// attempt's end receipt (records: the file's `lines`).
func attempt(ctx context.Context, t *testing.T, w *Writer, sub, key string, n int64, stored, lines int64, end validationv1.SubmissionState) {
	t.Helper()
	receipts := []*validationv1.SubmissionReceipt{dqreporttest.Attempt(sub, key, n, validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING, 0, 0)}
	if end != validationv1.SubmissionState_SUBMISSION_STATE_UNSPECIFIED {
		receipts = append(receipts, dqreporttest.Attempt(sub, key, n, end, lines, 0))
	}
	var outs []*validationv1.ValidationOutcome
	var dls []*dmicv1.DeadLetter
	for line := int64(1); line <= stored; line++ {
		o := dqreporttest.Outcome(sub, line, validationv1.Outcome_OUTCOME_ACCEPTED)
		if line%2 == 0 {
			f := dqreporttest.Failure("NHS-002", "nhs_number", dmicv1.Severity_SEVERITY_ERROR)
			o = dqreporttest.Outcome(sub, line, validationv1.Outcome_OUTCOME_REJECTED, f)
			dls = append(dls, &dmicv1.DeadLetter{
				Stage: "validate", Failures: []*dmicv1.Failure{f}, Header: o.Header, RecordId: o.RecordId, ProviderCode: "RR8",
				SourceTopic: "dmic.raw", SourcePartition: 1, SourceOffset: 1000*n + line, RejectedTime: timestamppb.New(dqreporttest.Received),
			})
		}
		o.Header.RawOffset = 1000*n + line
		o.ValidatedTime = timestamppb.New(dqreporttest.Validated.Add(time.Duration(n) * time.Minute))
		outs = append(outs, o)
	}
	if err := w.WriteReceipts(ctx, receipts[:1]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRejections(ctx, dls); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteReceipts(ctx, receipts[1:]); err != nil {
		t.Fatal(err)
	}
}

// counts is what the analysts' views and the rejections table say of RR8's
// April 2025.
type counts struct {
	records, rejected, submissions, ruleRecords, rejectionRows, rejectionRecords uint64
}

func countsOf(ctx context.Context, t *testing.T, conn driver.Conn, db string) counts {
	t.Helper()
	var c counts
	rows, err := DQSummary(ctx, conn, db, DQFilter{Provider: "RR8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		c.records += r.Records
		c.rejected += r.Rejected
		c.submissions += r.Submissions
	}
	rules, err := DQRules(ctx, conn, db, DQFilter{Provider: "RR8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		c.ruleRecords += r.Records
	}
	c.rejectionRows = count(t, conn, "SELECT count() FROM "+db+".rejections FINAL")
	c.rejectionRecords = count(t, conn, "SELECT sum(records) FROM "+db+".rejections_summary")
	return c
}

func TestResendsCountOnce(t *testing.T) {
	ctx, conn, fresh := testServer(t)
	const (
		received  = validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED
		abandoned = validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED
		none      = validationv1.SubmissionState_SUBMISSION_STATE_UNSPECIFIED
	)
	// Ten lines: five rejected (each one rejection row), five accepted.
	once := counts{records: 10, rejected: 5, submissions: 1, ruleRecords: 5, rejectionRows: 5, rejectionRecords: 5}
	report := func(t *testing.T, db, sub string) *validationv1.SubmissionReport {
		t.Helper()
		r, found, err := SubmissionReport(ctx, conn, db, sub, 100)
		if err != nil || !found {
			t.Fatalf("report of %s: %v, found %v", sub, err, found)
		}
		return r
	}

	t.Run("a resend of the same file counts once", func(t *testing.T) {
		db, w := fresh(t)
		attempt(ctx, t, w, "sub-a", "k", 1, 10, 10, received)
		attempt(ctx, t, w, "sub-a", "k", 2, 10, 10, received) // new raw offsets, same submission
		if got := countsOf(ctx, t, conn, db); got != once {
			t.Errorf("after a resend: %+v, want %+v", got, once)
		}
		if r := report(t, db, "sub-a"); r.Attempts != 2 || r.State != received || !r.Complete || r.Rejected != 5 || r.Validated != 10 {
			t.Errorf("report = %v, want received in 2 attempts, complete, 5 of 10 rejected", r)
		}
	})

	t.Run("an interrupted attempt resent in full counts once", func(t *testing.T) {
		db, w := fresh(t)
		attempt(ctx, t, w, "sub-b", "k", 1, 4, 10, none) // ingest killed after 4 lines
		if got := countsOf(ctx, t, conn, db); got.records != 0 || got.rejectionRecords != 0 {
			t.Errorf("an attempt still being received is counted: %+v", got)
		}
		attempt(ctx, t, w, "sub-b", "k", 2, 10, 10, received)
		if got := countsOf(ctx, t, conn, db); got != once {
			t.Errorf("after the resend: %+v, want %+v", got, once)
		}
		if r := report(t, db, "sub-b"); r.Attempts != 2 || r.State != received || !r.Complete || r.Records != 10 {
			t.Errorf("report = %v, want received in 2 attempts, complete, 10 records", r)
		}
	})

	t.Run("an abandoned submission is reported and not counted", func(t *testing.T) {
		db, w := fresh(t)
		attempt(ctx, t, w, "sub-c", "first-key", 1, 4, 10, abandoned)
		// The provider sent the file again under a new key: another submission.
		attempt(ctx, t, w, "sub-d", "second-key", 1, 10, 10, received)
		want := once
		want.rejectionRows += 2 // sub-c's rows stay in the table, outside the summaries
		if got := countsOf(ctx, t, conn, db); got != want {
			t.Errorf("%+v, want %+v", got, want)
		}
		if r := report(t, db, "sub-c"); r.State != abandoned || r.Complete || r.Validated != 4 || r.Records != 4 {
			t.Errorf("report = %v, want abandoned after 4 records, not complete", r)
		}
	})

	t.Run("of two finished submissions with one key only the later counts", func(t *testing.T) {
		db, w := fresh(t)
		attempt(ctx, t, w, "sub-e", "same-key", 1, 10, 10, received)
		later := dqreporttest.Attempt("sub-f", "same-key", 1, received, 10, 0)
		later.ReceivedTime = timestamppb.New(dqreporttest.Received.Add(time.Hour))
		later.ContentSha256 = "other"
		if err := w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{later}); err != nil {
			t.Fatal(err)
		}
		var outs []*validationv1.ValidationOutcome
		for line := int64(1); line <= 3; line++ {
			outs = append(outs, dqreporttest.Outcome("sub-f", line, validationv1.Outcome_OUTCOME_ACCEPTED))
		}
		if err := w.WriteOutcomes(ctx, outs); err != nil {
			t.Fatal(err)
		}
		want := counts{records: 3, submissions: 1, rejectionRows: 5}
		if got := countsOf(ctx, t, conn, db); got != want {
			t.Errorf("%+v, want %+v", got, want)
		}
		if r := report(t, db, "sub-e"); r.State != validationv1.SubmissionState_SUBMISSION_STATE_SUPERSEDED || r.SupersededBy != "sub-f" {
			t.Errorf("report = %v, want superseded by sub-f", r)
		}
	})

	t.Run("records without a receipt count", func(t *testing.T) {
		db, w := fresh(t)
		// Produced straight to Kafka: no ingest, no receipt.
		o := dqreporttest.Outcome("kafka-dmic.raw-1-7", 0, validationv1.Outcome_OUTCOME_ACCEPTED)
		if err := w.WriteOutcomes(ctx, []*validationv1.ValidationOutcome{o}); err != nil {
			t.Fatal(err)
		}
		if got := countsOf(ctx, t, conn, db); got.records != 1 || got.submissions != 1 {
			t.Errorf("%+v, want the one record", got)
		}
	})
}
