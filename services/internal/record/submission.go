package record

import (
	"errors"
	"strings"

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

// FirstLines remembers the line on which each record of one submission
// first appeared, so that a repeat can be pointed at it (rule DUP-001). The
// id a caller passes is the record's identity (ingest passes its record key:
// submitter, data set, and for a national copy the provider, with the CDS
// unique identifier), unique per dataset. It holds a copy of every id of the
// submission, about 70 bytes each.
type FirstLines struct {
	m [numDatasets]map[string]int64
}

// NewFirstLines starts an empty submission.
func NewFirstLines() *FirstLines { return &FirstLines{} }

// See records that line carries uid of dataset d. It returns the earlier line
// that carried the same id, or 0 when this is the first (or uid is empty:
// REQ-001 deals with that).
func (f *FirstLines) See(d dmicv1.Dataset, uid string, line int64) int64 {
	if uid == "" || d < 0 || int(d) >= numDatasets {
		return 0
	}
	m := f.m[d]
	if m == nil {
		m = map[string]int64{}
		f.m[d] = m
	}
	if first, ok := m[uid]; ok {
		return first
	}
	// A copy: the id may share memory with the whole decoded line, which
	// the map would otherwise keep alive for the rest of the submission.
	m[strings.Clone(uid)] = line
	return 0
}
