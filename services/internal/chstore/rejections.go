package chstore

import (
	"time"

	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// rejectionRow is one Failure of one DeadLetter. The dead letter's payload is
// never read: it may hold identifiers.
type rejectionRow struct {
	dl       *dmicv1.DeadLetter
	h        *dmicv1.EnvelopeHeader
	f        *dmicv1.Failure
	rejected time.Time
	received time.Time
}

// unknownFailure stands in for the reasons of a dead letter that carries none,
// so that every rejection is counted.
var unknownFailure = &dmicv1.Failure{RuleId: "UNKNOWN", Severity: dmicv1.Severity_SEVERITY_ERROR}

func rejectionRows(dls []*dmicv1.DeadLetter) []rejectionRow {
	n := 0
	for _, dl := range dls {
		n += max(1, len(dl.GetFailures()))
	}
	rows := make([]rejectionRow, 0, n)
	for _, dl := range dls {
		if dl == nil {
			continue
		}
		base := rejectionRow{dl: dl, h: dl.GetHeader()}
		base.rejected = clampDateTime(tsTime(dl.GetRejectedTime()))
		base.received = clampDateTime(tsTime(base.h.GetReceivedTime()))
		fs := dl.GetFailures()
		if len(fs) == 0 {
			fs = []*dmicv1.Failure{unknownFailure}
		}
		for _, f := range fs {
			if f == nil {
				f = unknownFailure
			}
			r := base
			r.f = f
			rows = append(rows, r)
		}
	}
	return rows
}

func severityName(s dmicv1.Severity) string {
	if s == dmicv1.Severity_SEVERITY_WARNING {
		return "warning"
	}
	// A dead letter is a rejection: a failure that does not say is an error.
	return "error"
}

func (r *rejectionRow) providerCode() string {
	if p := r.dl.GetProviderCode(); p != "" {
		return p
	}
	if r.h.GetSource() == dmicv1.Source_SOURCE_PROVIDER {
		return r.h.GetSubmitterOrgCode()
	}
	return ""
}

func (r *rejectionRow) recordID() string {
	return r.dl.GetRecordId()
}

// rejectionPositionSQL is a rejection's record within its submission, as
// dqreport.Position makes it for a verdict: the line, when the dead letter
// names a submission and a line; otherwise the flagged source partition and
// offset of the dead letter itself (a record produced straight to Kafka, or
// a message a stage could not read), which never equals a line. The server
// computes it, so that rows inserted by an older load, and rows copied from
// the layout-1 table, are keyed like new ones.
const rejectionPositionSQL = "if(submission_id != '' AND line_number > 0, toUInt64(line_number), " +
	"bitOr(toUInt64(9223372036854775808), bitOr(bitShiftLeft(toUInt64(bitAnd(source_partition, 8388607)), 40), " +
	"bitAnd(toUInt64(source_offset), 1099511627775))))"

// rejectionColumns is the rejections table.
var rejectionColumns = []column[rejectionRow]{
	strCol("source_topic", func(r *rejectionRow) string { return r.dl.GetSourceTopic() }),
	i32Col("source_partition", func(r *rejectionRow) int32 { return r.dl.GetSourcePartition() }),
	i64Col("source_offset", func(r *rejectionRow) int64 { return r.dl.GetSourceOffset() }),
	strCol("stage", func(r *rejectionRow) string { return r.dl.GetStage() }),
	strCol("submission_id", func(r *rejectionRow) string { return r.h.GetSubmissionId() }),
	strCol("record_id", (*rejectionRow).recordID),
	i64Col("line_number", func(r *rejectionRow) int64 { return r.h.GetLineNumber() }),
	strCol("record_key", func(r *rejectionRow) string { return r.h.GetRecordKey() }),
	strCol("dataset", func(r *rejectionRow) string { return record.DatasetName(r.h.GetDataset()) }),
	strCol("source", func(r *rejectionRow) string { return envelope.SourceName(r.h.GetSource()) }),
	strCol("submitter_org_code", func(r *rejectionRow) string { return r.h.GetSubmitterOrgCode() }),
	strCol("provider_code", (*rejectionRow).providerCode),
	strCol("rule_id", func(r *rejectionRow) string { return r.f.GetRuleId() }),
	strCol("field", func(r *rejectionRow) string { return r.f.GetField() }),
	strCol("severity", func(r *rejectionRow) string { return severityName(r.f.GetSeverity()) }),
	strCol("message", func(r *rejectionRow) string { return r.f.GetMessage() }),
	dateTimeCol("rejected_time", func(r *rejectionRow) time.Time { return r.rejected }),
	dateTimeCol("received_time", func(r *rejectionRow) time.Time { return r.received }),
	serverCol[rejectionRow]("position", "UInt64", rejectionPositionSQL),
	loadedAt[rejectionRow](),
}
