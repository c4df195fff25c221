// Package validate is the validate stage: raw provider JSON in; validated
// records, or dead letters with rule ids, out; and for every record a
// verdict (a ValidationOutcome, with no identifier values) for the
// provider's submission report and the data-quality summaries.
package validate

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// StageName names the stage in outcomes and dead letters.
const StageName = "validate"

// Stage validates raw records. It is used by one goroutine at a time; the
// validator it holds may have its specifications replaced meanwhile.
type Stage struct {
	v *spec.Validator
	// Optional metrics (nil without WithMetrics).
	outcomes *prometheus.CounterVec
	failures *prometheus.CounterVec
}

// Option configures a Stage.
type Option func(*Stage)

// WithMetrics counts verdicts by specification and outcome, and every rule
// failure (warnings too: the runner counts only the failures of rejected
// records) by specification, rule and severity.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(s *Stage) {
		s.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_validation_outcomes_total",
			Help: "Records judged by validate, by specification version and outcome."}, []string{"spec", "outcome"})
		s.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_validation_failures_total",
			Help: "Rule failures (errors and warnings), by specification version, rule and severity."}, []string{"spec", "rule", "severity"})
		reg.MustRegister(s.outcomes, s.failures)
	}
}

// New builds the stage.
func New(v *spec.Validator, opts ...Option) *Stage {
	s := &Stage{v: v}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Process implements pipeline.Processor.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	raw, err := envelope.ParseHeaders(m.Headers)
	// The message's timestamp, not a header a producer chose, picks the
	// version; without one, when validate first sees the record does.
	received, ok := envelope.Received(raw, m)
	if !ok {
		received = s.v.Clock().Now()
	}
	raw.Received = received
	if err != nil {
		f := &dmicv1.Failure{RuleId: "HDR-001", Field: "headers", Severity: dmicv1.Severity_SEVERITY_ERROR, Message: err.Error()}
		return nil, s.reject(m, partialHeader(raw, m), "", "", []*dmicv1.Failure{f})
	}
	var rec *dmicv1.CommissioningRecord
	var ds dmicv1.Dataset
	if len(m.Value) > limits.MaxRecordBytes {
		// Produced straight to dmic.raw past ingest's limit: refused like a
		// line ingest would refuse, before decoding it.
		err = record.TooLong(raw.Line, len(m.Value))
	} else {
		rec, ds, err = record.DecodeJSON(m.Value, raw.Dataset)
	}
	if err != nil {
		if ds != dmicv1.Dataset_DATASET_UNSPECIFIED {
			raw.Dataset = ds
		}
		var recordID string
		var de *record.DecodeError
		if errors.As(err, &de) {
			recordID = de.RecordID
		}
		return nil, s.reject(m, partialHeader(raw, m), recordID, raw.Submitter, []*dmicv1.Failure{record.FailureOf(err)})
	}
	raw.Dataset = ds
	// Every rule runs before the header is built, so that a provider learns
	// of all that is wrong with a record at once (a bad applicable date/time
	// is one of those rules, DATE-004).
	res := s.v.Validate(rec, spec.ValidateInput{
		Dataset: ds, Source: raw.Source, Received: received, DuplicateOfLine: raw.DuplicateOfLine,
	})
	failures := res.Failures
	label := ""
	if res.Spec != nil {
		label = res.Spec.Label()
	}
	hdr, herr := envelope.Header(raw, rec, m, label)
	if herr != nil {
		hdr = partialHeader(raw, m)
		hdr.SpecVersion = label
		if !spec.HasErrors(failures) {
			failures = append(failures, &dmicv1.Failure{RuleId: "DATE-004", Field: "cds_applicable_date_time",
				Severity: dmicv1.Severity_SEVERITY_ERROR, Message: herr.Error()})
		}
	}
	recordID := record.ShownID(rec)
	if recordID != rec.GetCdsUniqueIdentifier() {
		// The record id carries the patient's NHS number, local id or
		// postcode (rule CDS-004): it must reach no outcome, table or log,
		// so the verdict names the record by submission and line only.
		recordID, hdr.RecordKey = "", ""
		m.Key = []byte(hdr.GetSubmissionId())
	}
	if spec.HasErrors(failures) {
		return nil, s.reject(m, hdr, recordID, rec.GetProviderCode(), failures)
	}
	v, err := proto.Marshal(&dmicv1.ValidatedRecord{Header: hdr, Record: rec, Warnings: failures})
	if err != nil {
		return nil, err
	}
	outcome := validationv1.Outcome_OUTCOME_ACCEPTED
	if len(failures) > 0 {
		outcome = validationv1.Outcome_OUTCOME_WARNED
	}
	verdict, err := s.verdict(hdr, recordID, rec.GetProviderCode(), outcome, failures)
	if err != nil {
		return nil, err
	}
	return []pipeline.Output{{Topic: topics.Validated, Key: []byte(hdr.RecordKey), Value: v}, verdict}, nil
}

// reject dead-letters a record and sends its verdict along.
func (s *Stage) reject(m pipeline.Message, hdr *dmicv1.EnvelopeHeader, recordID, provider string, failures []*dmicv1.Failure) error {
	rej := &pipeline.Rejection{Failures: failures, Header: hdr, RecordID: recordID, Provider: provider}
	verdict, err := s.verdict(hdr, recordID, provider, validationv1.Outcome_OUTCOME_REJECTED, failures)
	if err == nil {
		if len(verdict.Key) == 0 {
			verdict.Key = m.Key
		}
		rej.Also = []pipeline.Output{verdict}
	}
	return rej
}

// verdict is the outcome message of one record. Failures carry rule, field
// and a fixed message, never a value, so the outcome topic and the tables fed
// from it hold no identifier.
func (s *Stage) verdict(hdr *dmicv1.EnvelopeHeader, recordID, provider string, outcome validationv1.Outcome, failures []*dmicv1.Failure) (pipeline.Output, error) {
	if provider == "" && hdr.GetSource() == dmicv1.Source_SOURCE_PROVIDER {
		provider = hdr.GetSubmitterOrgCode()
	}
	o := &validationv1.ValidationOutcome{
		Header: hdr, RecordId: recordID, ProviderCode: provider, Outcome: outcome,
		Failures: failures, Stage: StageName, ValidatedTime: timestamppb.New(s.v.Clock().Now()),
	}
	if s.outcomes != nil {
		sp := hdr.GetSpecVersion()
		s.outcomes.WithLabelValues(sp, dqreport.OutcomeName(outcome)).Inc()
		for _, f := range failures {
			s.failures.WithLabelValues(sp, f.GetRuleId(), dqreport.SeverityName(f.GetSeverity())).Inc()
		}
	}
	v, err := proto.Marshal(o)
	if err != nil {
		return pipeline.Output{}, err
	}
	return pipeline.Output{Topic: topics.ValidationOutcomes, Key: []byte(hdr.GetRecordKey()), Value: v}, nil
}

// partialHeader is what is known of a record that could not be decoded.
func partialHeader(raw envelope.Raw, m pipeline.Message) *dmicv1.EnvelopeHeader {
	h := &dmicv1.EnvelopeHeader{
		Dataset:          raw.Dataset,
		Source:           raw.Source,
		SubmitterOrgCode: raw.Submitter,
		SubmissionId:     raw.SubmissionID,
		Traceparent:      raw.Traceparent,
		RawPartition:     int32(m.Partition),
		RawOffset:        m.Offset,
		LineNumber:       raw.Line,
		ReceivedTime:     timestamppb.New(raw.Received), // Process set it (envelope.Received)
	}
	return h
}
