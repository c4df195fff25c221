package record

import (
	"errors"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// FailureOf is the failure a provider is told of for a line that could not be
// decoded: the decoder's rule, field and message (never the value). Ingest and
// the offline checker both use it, so that their reports agree.
func FailureOf(err error) *dmicv1.Failure {
	var de *DecodeError
	if errors.As(err, &de) {
		return &dmicv1.Failure{RuleId: de.RuleID, Field: de.Field, Severity: dmicv1.Severity_SEVERITY_ERROR, Message: de.Message}
	}
	return &dmicv1.Failure{RuleId: RuleJSON, Severity: dmicv1.Severity_SEVERITY_ERROR, Message: "record could not be decoded"}
}

// FirstLines remembers the line on which each record id of one submission
// first appeared, so that a repeat can be pointed at it (rule DUP-001). A
// record id is unique per dataset. It holds about 80 bytes per record.
type FirstLines struct {
	m map[string]int64
}

// NewFirstLines starts an empty submission.
func NewFirstLines() *FirstLines { return &FirstLines{m: map[string]int64{}} }

// See records that line carries uid of dataset d. It returns the earlier line
// that carried the same id, or 0 when this is the first (or uid is empty:
// REQ-001 deals with that).
func (f *FirstLines) See(d dmicv1.Dataset, uid string, line int64) int64 {
	if uid == "" {
		return 0
	}
	k := DatasetName(d) + "|" + uid
	if first, ok := f.m[k]; ok {
		return first
	}
	f.m[k] = line
	return 0
}
