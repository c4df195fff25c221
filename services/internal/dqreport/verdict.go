// Package dqreport builds the data-quality report a provider gets for one
// submission (validationv1.SubmissionReport) from validation outcomes held in
// memory, and renders it as text or JSON.
//
// The same report is computed two ways: by this package's Builder (what the
// offline checker `dmic validate` prints, with nothing stored anywhere) and by
// chstore.SubmissionReport from ClickHouse (what the running system answers).
// Both must agree exactly for the same outcomes, so the rules that decide what
// counts live here, and chstore applies the same ones: a record is identified
// by (submission id, Position); of several verdicts on one record the one with
// the latest validated time (to the second) wins, the later one on a tie; times
// are whole seconds; names of outcomes and severities round-trip through
// OutcomeName/ParseOutcome and SeverityName/ParseSeverity.
package dqreport

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// rawPositionFlag marks a position taken from the raw topic, so that it can
// never equal a line number of the same submission.
const rawPositionFlag = uint64(1) << 63

// Position is the identity of a record within its submission.
//
// A record of a submission is its line (1-based): ingest numbers every line,
// and a record refused at the door never reaches the raw topic, so the line is
// the one identity every outcome of a submission has. A record produced
// straight to the raw topic, without a submission, has no meaningful line: its
// raw position (partition, offset) identifies it, so a redelivery of its
// outcome replaces itself. That is also the fallback for a submitted record
// whose line is unknown. The offline checker has neither a submission nor a
// raw position, only lines, and they identify.
//
// A raw position is flag | partition<<40 | offset (offset below 2^40, partition
// below 2^23), so it never collides with a line number.
func Position(h *dmicv1.EnvelopeHeader) uint64 {
	line := h.GetLineNumber()
	rawKnown := h.GetRawPartition() != 0 || h.GetRawOffset() != 0
	if line > 0 && (h.GetSubmissionId() != "" || !rawKnown) {
		return uint64(line)
	}
	return rawPositionFlag | (uint64(uint32(h.GetRawPartition()))&(1<<23-1))<<40 | uint64(h.GetRawOffset())&(1<<40-1)
}

// Outcome names as stored and shown.
const (
	NameAccepted = "accepted"
	NameWarned   = "warned"
	NameRejected = "rejected"
)

// Verdict is the outcome of o. An outcome that does not say is derived from
// its failures (any error: rejected; any warning: warned; none: accepted), so
// that every judged record is counted as exactly one of the three.
func Verdict(o *validationv1.ValidationOutcome) validationv1.Outcome {
	switch v := o.GetOutcome(); v {
	case validationv1.Outcome_OUTCOME_ACCEPTED, validationv1.Outcome_OUTCOME_WARNED, validationv1.Outcome_OUTCOME_REJECTED:
		return v
	}
	verdict := validationv1.Outcome_OUTCOME_ACCEPTED
	for _, f := range o.GetFailures() {
		if f == nil {
			continue
		}
		if f.GetSeverity() != dmicv1.Severity_SEVERITY_WARNING {
			return validationv1.Outcome_OUTCOME_REJECTED
		}
		verdict = validationv1.Outcome_OUTCOME_WARNED
	}
	return verdict
}

// enumNames maps the values of an enum to the names the store keeps, both
// ways.
type enumNames[E comparable] []struct {
	value E
	name  string
}

func (n enumNames[E]) nameOf(v E, otherwise string) string {
	for _, e := range n {
		if e.value == v {
			return e.name
		}
	}
	return otherwise
}

func (n enumNames[E]) parse(s string, otherwise E) E {
	for _, e := range n {
		if e.name == s {
			return e.value
		}
	}
	return otherwise
}

var outcomeNames = enumNames[validationv1.Outcome]{
	{validationv1.Outcome_OUTCOME_ACCEPTED, NameAccepted},
	{validationv1.Outcome_OUTCOME_WARNED, NameWarned},
	{validationv1.Outcome_OUTCOME_REJECTED, NameRejected},
}

// OutcomeName is "accepted", "warned" or "rejected"; any other value (never
// a Verdict) is "unspecified".
func OutcomeName(o validationv1.Outcome) string { return outcomeNames.nameOf(o, "unspecified") }

// ParseOutcome reverses OutcomeName.
func ParseOutcome(s string) validationv1.Outcome {
	return outcomeNames.parse(s, validationv1.Outcome_OUTCOME_UNSPECIFIED)
}

var severityNames = enumNames[dmicv1.Severity]{
	{dmicv1.Severity_SEVERITY_ERROR, "error"},
	{dmicv1.Severity_SEVERITY_WARNING, "warning"},
}

// SeverityName is "error", "warning" or "unspecified".
func SeverityName(s dmicv1.Severity) string { return severityNames.nameOf(s, "unspecified") }

// ParseSeverity reverses SeverityName.
func ParseSeverity(s string) dmicv1.Severity {
	return severityNames.parse(s, dmicv1.Severity_SEVERITY_UNSPECIFIED)
}

// NormalizeDataset maps a dataset without a canonical name to unspecified,
// as a store that keeps names does.
func NormalizeDataset(d dmicv1.Dataset) dmicv1.Dataset {
	if record.DatasetName(d) == "" {
		return dmicv1.Dataset_DATASET_UNSPECIFIED
	}
	return d
}

// ParseDatasetName reads a dataset name as record.DatasetName writes it; an
// empty or unknown name is unspecified.
func ParseDatasetName(name string) dmicv1.Dataset {
	d, err := record.ParseDataset(name)
	if err != nil || name == "" {
		return dmicv1.Dataset_DATASET_UNSPECIFIED
	}
	return d
}

// StoredTime is t as a report holds it: whole seconds, and nil when t is
// absent or outside what a ClickHouse DateTime holds (1970-01-01 00:00:01 …
// 2106-02-07), because the store keeps such a time as the zero DateTime.
func StoredTime(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return TimeOf(t.AsTime())
}

// TimeOf is StoredTime for a time.Time (a zero DateTime read back is nil).
func TimeOf(t time.Time) *timestamppb.Timestamp {
	if s := storedSeconds(t); s > 0 {
		return timestamppb.New(time.Unix(s, 0))
	}
	return nil
}

// storedSeconds is t in whole seconds as a DateTime holds it, 0 when it does not fit.
func storedSeconds(t time.Time) int64 {
	if t.IsZero() || t.Unix() <= 0 || t.Unix() > 1<<32-1 {
		return 0
	}
	return t.Unix()
}

// normalizeFailure is f as it reads back from the store: the severity is one of
// the named three.
func normalizeFailure(f *dmicv1.Failure) *dmicv1.Failure {
	return &dmicv1.Failure{
		RuleId:   f.GetRuleId(),
		Field:    f.GetField(),
		Severity: ParseSeverity(SeverityName(f.GetSeverity())),
		Message:  f.GetMessage(),
	}
}

// CompareRules orders rule counts by rule id, field, then severity (as its
// enum number: unspecified, error, warning).
func CompareRules(a, b *validationv1.RuleCount) int {
	if c := strings.Compare(a.GetRuleId(), b.GetRuleId()); c != 0 {
		return c
	}
	if c := strings.Compare(a.GetField(), b.GetField()); c != 0 {
		return c
	}
	return int(a.GetSeverity()) - int(b.GetSeverity())
}

// SortRules sorts rule counts with CompareRules.
func SortRules(rules []*validationv1.RuleCount) {
	slices.SortFunc(rules, CompareRules)
}
