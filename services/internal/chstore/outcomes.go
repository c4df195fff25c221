package chstore

import (
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// outcomeRow is one ValidationOutcome. Its failures are kept in their order as
// parallel arrays (one element per failure): a Nested column is several
// columns to ClickHouse (failures.rule_id, …), which the one-name-per-column
// list that drives DDL, upgrades and INSERTs cannot describe, and parallel
// arrays ARRAY JOIN just the same.
type outcomeRow struct {
	o         *validationv1.ValidationOutcome
	h         *dmicv1.EnvelopeHeader
	failures  []*dmicv1.Failure // without nils
	verdict   string
	received  time.Time
	validated time.Time
}

// PackedOutcome is a validation outcome as its row of the
// validation_outcomes table, packed (packed.go).
type PackedOutcome struct{ b []byte }

// PackOutcome is o's row of validation_outcomes. o is not kept.
func PackOutcome(o *validationv1.ValidationOutcome) PackedOutcome {
	r := newOutcomeRow(o)
	return PackedOutcome{packRowSized(outcomeColumns, &r, 256)}
}

func newOutcomeRow(o *validationv1.ValidationOutcome) outcomeRow {
	r := outcomeRow{
		o:         o,
		h:         o.GetHeader(),
		verdict:   dqreport.OutcomeName(dqreport.Verdict(o)),
		received:  clampDateTime(tsTime(o.GetHeader().GetReceivedTime())),
		validated: clampDateTime(tsTime(o.GetValidatedTime())),
	}
	for _, f := range o.GetFailures() {
		if f != nil {
			r.failures = append(r.failures, f)
		}
	}
	return r
}

func (r *outcomeRow) providerCode() string {
	if p := r.o.GetProviderCode(); p != "" {
		return p
	}
	// A record refused at the door has no provider code of its own; a
	// provider's submission is the provider's.
	if r.h.GetSource() == dmicv1.Source_SOURCE_PROVIDER {
		return r.h.GetSubmitterOrgCode()
	}
	return ""
}

func failureCol(name string, get func(*dmicv1.Failure) string) column[outcomeRow] {
	return strArrayCol(name, func(r *outcomeRow) []string {
		out := make([]string, len(r.failures))
		for i, f := range r.failures {
			out[i] = get(f)
		}
		return out
	})
}

// outcomeColumns is the validation_outcomes table.
var outcomeColumns = []column[outcomeRow]{
	strCol("submission_id", func(r *outcomeRow) string { return r.h.GetSubmissionId() }),
	u64Col("position", func(r *outcomeRow) uint64 { return dqreport.Position(r.h) }),
	i64Col("line_number", func(r *outcomeRow) int64 { return r.h.GetLineNumber() }),
	strCol("record_id", func(r *outcomeRow) string { return r.o.GetRecordId() }),
	strCol("record_key", func(r *outcomeRow) string { return r.h.GetRecordKey() }),
	strCol("dataset", func(r *outcomeRow) string { return record.DatasetName(r.h.GetDataset()) }),
	strCol("source", func(r *outcomeRow) string { return envelope.SourceName(r.h.GetSource()) }),
	strCol("submitter_org_code", func(r *outcomeRow) string { return r.h.GetSubmitterOrgCode() }),
	strCol("provider_code", (*outcomeRow).providerCode),
	strCol("outcome", func(r *outcomeRow) string { return r.verdict }),
	strCol("stage", func(r *outcomeRow) string { return r.o.GetStage() }),
	strCol("spec_version", func(r *outcomeRow) string { return r.h.GetSpecVersion() }),
	i32Col("raw_partition", func(r *outcomeRow) int32 { return r.h.GetRawPartition() }),
	i64Col("raw_offset", func(r *outcomeRow) int64 { return r.h.GetRawOffset() }),
	dateTimeCol("received_time", func(r *outcomeRow) time.Time { return r.received }),
	dateTimeCol("validated_time", func(r *outcomeRow) time.Time { return r.validated }),
	failureCol("failure_rule_id", (*dmicv1.Failure).GetRuleId),
	failureCol("failure_field", (*dmicv1.Failure).GetField),
	failureCol("failure_severity", func(f *dmicv1.Failure) string { return dqreport.SeverityName(f.GetSeverity()) }),
	failureCol("failure_message", (*dmicv1.Failure).GetMessage),
	loadedAt[outcomeRow](),
}

// receiptColumns is the submissions table.
var receiptColumns = []column[*validationv1.SubmissionReceipt]{
	strCol("submission_id", func(r **validationv1.SubmissionReceipt) string { return (*r).GetSubmissionId() }),
	strCol("dataset", func(r **validationv1.SubmissionReceipt) string { return record.DatasetName((*r).GetDataset()) }),
	strCol("source", func(r **validationv1.SubmissionReceipt) string { return envelope.SourceName((*r).GetSource()) }),
	strCol("submitter_org_code", func(r **validationv1.SubmissionReceipt) string { return (*r).GetSubmitterOrgCode() }),
	dateTimeCol("received_time", func(r **validationv1.SubmissionReceipt) time.Time {
		return clampDateTime(tsTime((*r).GetReceivedTime()))
	}),
	i64Col("records", func(r **validationv1.SubmissionReceipt) int64 { return (*r).GetRecords() }),
	i64Col("refused", func(r **validationv1.SubmissionReceipt) int64 { return (*r).GetRefused() }),
	strCol("transport", func(r **validationv1.SubmissionReceipt) string { return (*r).GetTransport() }),
	// A receipt from before states was a final one: rows copied from a
	// layout-1 table (which has no state) read as received.
	withDefault(strCol("state", func(r **validationv1.SubmissionReceipt) string { return dqreport.StateName((*r).GetState()) }),
		"'"+dqreport.StateReceived+"'"),
	i64Col("attempt", func(r **validationv1.SubmissionReceipt) int64 { return (*r).GetAttempt() }),
	dateTimeCol("attempt_time", func(r **validationv1.SubmissionReceipt) time.Time {
		return clampDateTime(tsTime((*r).GetAttemptTime()))
	}),
	strCol("idempotency_key", func(r **validationv1.SubmissionReceipt) string { return (*r).GetIdempotencyKey() }),
	strCol("content_sha256", func(r **validationv1.SubmissionReceipt) string { return (*r).GetContentSha256() }),
	loadedAt[*validationv1.SubmissionReceipt](),
}
