// Package validate is the validate stage: raw provider JSON in, validated
// records or dead letters with rule ids out.
package validate

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/envelope"
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/record"
	"github.com/dmic-nhs/dmic/services/topics"
	"github.com/dmic-nhs/dmic/services/validation"
)

// Stage validates raw records. It is used by one goroutine at a time.
type Stage struct {
	v *validation.Validator
}

// New builds the stage.
func New(v *validation.Validator) *Stage { return &Stage{v: v} }

// Process implements pipeline.Processor.
func (s *Stage) Process(_ context.Context, m kafka.Message) ([]pipeline.Output, error) {
	raw, err := envelope.ParseHeaders(m.Headers)
	if err != nil {
		rej := pipeline.Reject("HDR-001", "headers", err.Error())
		rej.Header = partialHeader(raw, m) // what did parse
		return nil, rej
	}
	rec, ds, err := record.DecodeJSON(m.Value, raw.Dataset)
	if err != nil {
		rej := pipeline.Reject("DEC-JSON", "", "record could not be decoded")
		var de *record.DecodeError
		if errors.As(err, &de) {
			rej = pipeline.Reject(de.RuleID, de.Field, de.Message)
			rej.RecordID = de.RecordID
		}
		if ds != dmicv1.Dataset_DATASET_UNSPECIFIED {
			raw.Dataset = ds
		}
		rej.Header = partialHeader(raw, m)
		return nil, rej
	}
	raw.Dataset = ds
	// Every rule runs before the header is built, so that a provider learns
	// of all that is wrong with a record at once (a bad applicable date/time
	// is one of those rules, DATE-004).
	failures := s.v.Validate(ds, rec)
	hdr, herr := envelope.Header(raw, rec, m, validation.SpecVersion)
	if herr != nil {
		hdr = partialHeader(raw, m)
		if !validation.HasErrors(failures) {
			failures = append(failures, &dmicv1.Failure{RuleId: "DATE-004", Field: "cds_applicable_date_time",
				Severity: dmicv1.Severity_SEVERITY_ERROR, Message: herr.Error()})
		}
	}
	if validation.HasErrors(failures) {
		return nil, &pipeline.Rejection{Failures: failures, Header: hdr, RecordID: rec.GetCdsUniqueIdentifier(), Provider: rec.GetProviderCode()}
	}
	out := &dmicv1.ValidatedRecord{Header: hdr, Record: rec, Warnings: failures}
	v, err := proto.Marshal(out)
	if err != nil {
		return nil, err
	}
	return []pipeline.Output{{Topic: topics.Validated, Key: []byte(hdr.RecordKey), Value: v}}, nil
}

// partialHeader is what is known of a record that could not be decoded.
func partialHeader(raw envelope.Raw, m kafka.Message) *dmicv1.EnvelopeHeader {
	h := &dmicv1.EnvelopeHeader{
		Dataset:          raw.Dataset,
		Source:           raw.Source,
		SubmitterOrgCode: raw.Submitter,
		SubmissionId:     raw.SubmissionID,
		Traceparent:      raw.Traceparent,
		RawPartition:     int32(m.Partition),
		RawOffset:        m.Offset,
		LineNumber:       raw.Line,
		ReceivedTime:     timestamppb.New(m.Time),
	}
	if !raw.Received.IsZero() {
		h.ReceivedTime = timestamppb.New(raw.Received)
	}
	return h
}
