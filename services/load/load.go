// Package load is the sink: it reads the assigned, reconciled and rejected
// topics and writes them to ClickHouse in large batches. Offsets are committed
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
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/topics"
)

// Inputs are the topics load consumes.
var Inputs = []string{topics.Assigned, topics.Reconciled, topics.Rejected}

// Destinations of decoded outputs.
const (
	TableActivity       = "activity"
	TableReconciliation = "reconciliation"
	TableRejections     = "rejections"
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
	}
	return nil, fmt.Errorf("load: unexpected topic %s", m.Topic)
}

// Store is the ClickHouse side of the sink.
type Store interface {
	WriteActivity(ctx context.Context, recs []*dmicv1.DeidentifiedRecord) error
	WriteRejections(ctx context.Context, dls []*dmicv1.DeadLetter) error
	WriteReconciliation(ctx context.Context, rs []*dmicv1.ReconciliationResult) error
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
	var kafkaOuts []pipeline.Output
	for _, o := range outs {
		switch p := o.Payload.(type) {
		case *dmicv1.DeidentifiedRecord:
			acts = append(acts, p)
		case *dmicv1.ReconciliationResult:
			recs = append(recs, p)
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
	if len(kafkaOuts) > 0 {
		return s.Kafka.Write(ctx, kafkaOuts)
	}
	return nil
}
