// Package load is the sink: it reads the assigned, reconciled and rejected
// topics, the validation outcomes and submission receipts that feed
// data-quality reports, the security audit trail and the rows of
// commissioner-assignment re-runs, and writes them to
// ClickHouse in large batches. Offsets are committed
// only after ClickHouse acknowledged the insert; the tables are
// ReplacingMergeTree keyed by record identity, so a replayed batch leaves
// nothing twice in what analysts query.
package load

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Inputs are the topics load consumes.
var Inputs = []string{topics.Assigned, topics.Reconciled, topics.Rejected, topics.ValidationOutcomes, topics.Submissions, topics.Audit, topics.CamReruns}

// Row is one row for ClickHouse: an Activity, a Reconciliation, a
// Rejection, an Outcome, a Receipt, an AuditEntry or a CamRerun, and nothing else (the method is
// unexported). The stage decodes each message into one (Decode); the sink
// writes them to their tables; the runner carries them in between as
// pipeline.RowOutput[Row], which only this package reads back.
//
// The rows of the three tables that get a row per record (activity,
// reconciliation, validation_outcomes) are packed (chstore.PackActivity):
// what a batch keeps live until it is written bounds how large it may be
// under the memory limit, and so how large ClickHouse's inserts are. A
// packed row is one pointer-free buffer, a little smaller than the message;
// the decoded message was a tree of objects and small strings that the
// garbage collector marked on every cycle (docs/performance.md, Memory).
// The other tables get a few rows per submission, and keep theirs decoded.
type Row interface{ isRow() }

// Activity is a row of the activity table.
type Activity struct{ Row chstore.PackedActivity }

// Reconciliation is a row of the reconciliation table.
type Reconciliation struct{ Row chstore.PackedReconciliation }

// Rejection is a row of the rejections table: a dead letter of any stage,
// without its payload.
type Rejection struct{ DeadLetter *dmicv1.DeadLetter }

// Outcome is a row of the validation outcomes table.
type Outcome struct{ Row chstore.PackedOutcome }

// Receipt is a row of the submissions table.
type Receipt struct {
	Receipt *validationv1.SubmissionReceipt
}

// AuditEntry is a row of the audit table: an entry of dmic.audit and its
// offset there.
type AuditEntry struct{ Row chstore.AuditRow }

// CamRerun is a row of the cam_rerun table: one record of a re-run of
// commissioner assignment.
type CamRerun struct{ Row *assignmentv1.CamRerunRow }

func (Activity) isRow()       {}
func (AuditEntry) isRow()     {}
func (CamRerun) isRow()       {}
func (Reconciliation) isRow() {}
func (Rejection) isRow()      {}
func (Outcome) isRow()        {}
func (Receipt) isRow()        {}

// Processor is the load stage: each message becomes one Row.
type Processor struct {
	// Clock dates an activity that has neither an activity date nor a
	// received time (nil: the wall clock).
	Clock clock.Clock
}

// Process implements pipeline.Processor.
func (p Processor) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	row, err := p.Decode(m)
	if err != nil {
		return nil, err
	}
	return []pipeline.Output{pipeline.RowOutput(row)}, nil
}

// Decode is the row of m, by its topic. A message that is not what its topic
// carries is a *pipeline.Rejection (dead-lettered).
func (p Processor) Decode(m pipeline.Message) (Row, error) {
	switch m.Topic {
	case topics.Assigned:
		r := &dmicv1.DeidentifiedRecord{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
		}
		// The row holds the activity table's columns and nothing else:
		// not the other domains' pseudonyms, which travel only as far as
		// reconcile, nor CAM's trail, which an explanation derives again
		// from the row. The decoded record is garbage at once.
		return Activity{chstore.PackActivity(r, p.Clock.Now())}, nil
	case topics.Reconciled:
		r := &dmicv1.ReconciliationResult{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.ReconciliationResult")
		}
		return Reconciliation{chstore.PackReconciliation(r)}, nil
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
		return Rejection{r}, nil
	case topics.ValidationOutcomes:
		o := &validationv1.ValidationOutcome{}
		if err := proto.Unmarshal(m.Value, o); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.validation.v1.ValidationOutcome")
		}
		return Outcome{chstore.PackOutcome(o)}, nil
	case topics.Submissions:
		r := &validationv1.SubmissionReceipt{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.validation.v1.SubmissionReceipt")
		}
		return Receipt{r}, nil
	case topics.Audit:
		var e audit.Entry
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic audit entry (JSON)")
		}
		if e.ID == "" {
			// Every writer gives an id; one without is keyed by its place
			// on the trail, which a redelivery keeps.
			e.ID = fmt.Sprintf("%s@%d/%d", m.Topic, m.Partition, m.Offset)
		}
		return AuditEntry{chstore.AuditRow{Entry: e, Offset: m.Offset}}, nil
	case topics.CamReruns:
		r := &assignmentv1.CamRerunRow{}
		if err := proto.Unmarshal(m.Value, r); err != nil || r.GetRunId() == "" || r.GetRecordKey() == "" {
			return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.assignment.v1.CamRerunRow with a run id and a record key")
		}
		return CamRerun{r}, nil
	}
	return nil, fmt.Errorf("load: unexpected topic %s", m.Topic)
}

// Store is the ClickHouse side of the sink.
type Store interface {
	WritePackedActivity(ctx context.Context, rows []chstore.PackedActivity) error
	WriteRejections(ctx context.Context, dls []*dmicv1.DeadLetter) error
	WritePackedReconciliation(ctx context.Context, rows []chstore.PackedReconciliation) error
	WritePackedOutcomes(ctx context.Context, rows []chstore.PackedOutcome) error
	WriteReceipts(ctx context.Context, rs []*validationv1.SubmissionReceipt) error
	WriteAudit(ctx context.Context, rs []chstore.AuditRow) error
	WriteCamReruns(ctx context.Context, rs []*assignmentv1.CamRerunRow) error
}

// Sink writes the stage's rows to ClickHouse, one insert per table per
// batch, and dead letters of load itself (messages it could not decode) to
// Kafka, as every stage does.
type Sink struct {
	Store Store
	Kafka pipeline.Sink
	// Recipients, when set, receives every activity batch after dmic's
	// table: the recipient databases of the agreements in force.
	Recipients RecipientWriter
}

// RecipientWriter writes activity to recipients' data (Recipients).
type RecipientWriter interface {
	Write(ctx context.Context, rows []chstore.PackedActivity) error
}

// Write implements pipeline.Sink.
func (s Sink) Write(ctx context.Context, outs []pipeline.Output) error {
	rows, messages, err := pipeline.SplitRows[Row](outs)
	if err != nil {
		return err
	}
	if err := s.WriteRows(ctx, rows); err != nil {
		return err
	}
	if len(messages) > 0 {
		return s.Kafka.Write(ctx, messages)
	}
	return nil
}

// WriteRows writes rows to their tables.
func (s Sink) WriteRows(ctx context.Context, rows []Row) error {
	var acts []chstore.PackedActivity
	var recs []chstore.PackedReconciliation
	var rejs []*dmicv1.DeadLetter
	var outcomes []chstore.PackedOutcome
	var receipts []*validationv1.SubmissionReceipt
	var entries []chstore.AuditRow
	var reruns []*assignmentv1.CamRerunRow
	for _, row := range rows {
		switch r := row.(type) {
		case Activity:
			acts = append(acts, r.Row)
		case Reconciliation:
			recs = append(recs, r.Row)
		case Rejection:
			rejs = append(rejs, r.DeadLetter)
		case Outcome:
			outcomes = append(outcomes, r.Row)
		case Receipt:
			receipts = append(receipts, r.Receipt)
		case AuditEntry:
			entries = append(entries, r.Row)
		case CamRerun:
			reruns = append(reruns, r.Row)
		default:
			// Only a new Row type this switch forgot can get here.
			return pipeline.Permanent(fmt.Errorf("load: no table for a row of type %T", row))
		}
	}
	// The tables are written at once, each insert on its own connection:
	// the batch is done when the slowest is, not when the sum of them is.
	// Each insert costs ClickHouse a round of writing parts, so one after
	// the other they made most of load's batch time (0.25 to 1 s a batch at
	// 2,000 records/s), which every record waits for. Nothing is committed
	// unless all succeed, and a batch written again replaces itself, so
	// their order does not matter to what is kept; only the two orders a
	// reader may see in between are kept (recipients after dmic's table,
	// receipts before outcomes).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.Store.WritePackedActivity(gctx, acts); err != nil {
			return err
		}
		if s.Recipients != nil {
			return s.Recipients.Write(gctx, acts)
		}
		return nil
	})
	g.Go(func() error { return s.Store.WritePackedReconciliation(gctx, recs) })
	g.Go(func() error { return s.Store.WriteRejections(gctx, rejs) })
	g.Go(func() error {
		// Receipts before outcomes, so that a report read in between already
		// knows how many records the submission has.
		if err := s.Store.WriteReceipts(gctx, receipts); err != nil {
			return err
		}
		return s.Store.WritePackedOutcomes(gctx, outcomes)
	})
	g.Go(func() error { return s.Store.WriteCamReruns(gctx, reruns) })
	g.Go(func() error { return s.Store.WriteAudit(gctx, entries) })
	return g.Wait()
}
