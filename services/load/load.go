// Package load is the sink: it reads the assigned, reconciled and rejected
// topics, and the validation outcomes and submission receipts that feed
// data-quality reports, and writes them to ClickHouse in large batches. Offsets are committed
// only after ClickHouse acknowledged the insert; the tables are
// ReplacingMergeTree keyed by record identity, so a replayed batch leaves
// nothing twice in what analysts query.
package load

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/topics"
)

// Inputs are the topics load consumes.
var Inputs = []string{topics.Assigned, topics.Reconciled, topics.Rejected, topics.ValidationOutcomes, topics.Submissions}

// Destinations of decoded outputs.
const (
	TableActivity       = "activity"
	TableReconciliation = "reconciliation"
	TableRejections     = "rejections"
	TableOutcomes       = "validation_outcomes"
	TableSubmissions    = "submissions"
)

// Processor decodes each message into a row for its table.
type Processor struct{}

// Process implements pipeline.Processor.
func (Processor) Process(_ context.Context, m kafka.Message) ([]pipeline.Output, error) {
	switch m.Topic {
	case topics.Assigned:
		r := &dmicv1.DeidentifiedRecord{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
		}
		// Other domains' pseudonyms travel only as far as reconcile; the
		// analytical store holds the analytics pseudonym alone.
		if a := r.GetActivity(); a != nil {
			a.DomainPseudonyms = nil
		}
		return []pipeline.Output{{Topic: TableActivity, Payload: r}}, nil
	case topics.Reconciled:
		r := &dmicv1.ReconciliationResult{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.ReconciliationResult")
		}
		return []pipeline.Output{{Topic: TableReconciliation, Payload: r}}, nil
	case topics.Rejected:
		r := &dmicv1.DeadLetter{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			// A dead letter that is itself unreadable cannot go back to the
			// dead-letter topic (it would loop): record it as a rejection row
			// that names only its position.
			r = &dmicv1.DeadLetter{Stage: "load", Failures: []*dmicv1.Failure{{RuleId: "STAGE-DECODE",
				Severity: dmicv1.Severity_SEVERITY_ERROR, Message: "dead letter is not a dmic.v1.DeadLetter"}}}
		}
		if r.SourceTopic == "" {
			r.SourceTopic, r.SourcePartition, r.SourceOffset = m.Topic, int32(m.Partition), m.Offset
		}
		r.Payload = nil // never stored
		return []pipeline.Output{{Topic: TableRejections, Payload: r}}, nil
	case topics.ValidationOutcomes:
		o := &validationv1.ValidationOutcome{}
		if err := proto.Unmarshal(m.Value, o); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.validation.v1.ValidationOutcome")
		}
		return []pipeline.Output{{Topic: TableOutcomes, Payload: o}}, nil
	case topics.Submissions:
		r := &validationv1.SubmissionReceipt{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.validation.v1.SubmissionReceipt")
		}
		return []pipeline.Output{{Topic: TableSubmissions, Payload: r}}, nil
	}
	return nil, fmt.Errorf("load: unexpected topic %s", m.Topic)
}

// Store is the ClickHouse side of the sink.
type Store interface {
	WriteActivity(ctx context.Context, recs []*dmicv1.DeidentifiedRecord) error
	WriteRejections(ctx context.Context, dls []*dmicv1.DeadLetter) error
	WriteReconciliation(ctx context.Context, rs []*dmicv1.ReconciliationResult) error
	WriteOutcomes(ctx context.Context, outs []*validationv1.ValidationOutcome) error
	WriteReceipts(ctx context.Context, rs []*validationv1.SubmissionReceipt) error
}

// Sink writes decoded rows to ClickHouse, one insert per table per batch, and
// dead letters of load itself to Kafka.
type Sink struct {
	Store Store
	Kafka pipeline.Sink
}

// Write implements pipeline.Sink.
func (s Sink) Write(ctx context.Context, outs []pipeline.Output) error {
	var acts []*dmicv1.DeidentifiedRecord
	var recs []*dmicv1.ReconciliationResult
	var rejs []*dmicv1.DeadLetter
	var outcomes []*validationv1.ValidationOutcome
	var receipts []*validationv1.SubmissionReceipt
	var kafkaOuts []pipeline.Output
	for _, o := range outs {
		switch p := o.Payload.(type) {
		case *dmicv1.DeidentifiedRecord:
			acts = append(acts, p)
		case *dmicv1.ReconciliationResult:
			recs = append(recs, p)
		case *validationv1.ValidationOutcome:
			outcomes = append(outcomes, p)
		case *validationv1.SubmissionReceipt:
			receipts = append(receipts, p)
		case *dmicv1.DeadLetter:
			if o.Topic == TableRejections {
				rejs = append(rejs, p)
			} else {
				// load's own dead letter (a message it could not decode):
				// send it to the dead-letter topic like any stage does.
				kafkaOuts = append(kafkaOuts, o)
			}
		default:
			kafkaOuts = append(kafkaOuts, o)
		}
	}
	if err := s.Store.WriteActivity(ctx, acts); err != nil {
		return err
	}
	if err := s.Store.WriteReconciliation(ctx, recs); err != nil {
		return err
	}
	if err := s.Store.WriteRejections(ctx, rejs); err != nil {
		return err
	}
	// Receipts before outcomes, so that a report read in between already
	// knows how many records the submission has.
	if err := s.Store.WriteReceipts(ctx, receipts); err != nil {
		return err
	}
	if err := s.Store.WriteOutcomes(ctx, outcomes); err != nil {
		return err
	}
	if len(kafkaOuts) > 0 {
		return s.Kafka.Write(ctx, kafkaOuts)
	}
	return nil
}
