// Package ingest is the front door: providers and the national exchange submit
// records over HTTP (NDJSON or CSV) or gRPC; each submission gets an id and a
// result per record, and accepted records go to the raw topic.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// flushEvery is how many raw messages are produced together.
const flushEvery = 5000

// Producer is the part of *kafkapipe.Writer ingest uses.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// submission accumulates the records and results of one attempt to store a
// submission.
type submission struct {
	// start is the attempt's start receipt as the attempt log decided it: the
	// submission's id and received time, this attempt's number and time.
	start     *validationv1.SubmissionReceipt
	id        string
	dataset   dmicv1.Dataset
	source    dmicv1.Source
	submitter string
	received  time.Time
	trace     string
	keepAll   bool
	// listLimit bounds the results the answer lists, of each kind (with
	// failures, accepted); listed counts them. The counts stay complete.
	listLimit int
	listed    [2]int
	// final is the final receipt, once finish has sent it.
	final *validationv1.SubmissionReceipt

	producer Producer
	pending  []kafka.Message
	resp     *dmicv1.SubmitRecordsResponse
	// firstLines marks a repeated record id for validate's duplicate rule.
	firstLines *record.FirstLines
}

func newTraceparent() string {
	var t [16]byte
	var s [8]byte
	_, _ = rand.Read(t[:])
	_, _ = rand.Read(s[:])
	return "00-" + hex.EncodeToString(t[:]) + "-" + hex.EncodeToString(s[:]) + "-01"
}

// newSubmission is the attempt that start (decided by the attempt log)
// began. Every record carries the submission's id and received time, which
// are the first attempt's: a resend replaces what an earlier attempt stored.
func newSubmission(p Producer, start *validationv1.SubmissionReceipt, keepAll bool, listLimit int) *submission {
	id := start.GetSubmissionId()
	return &submission{
		start: start, id: id, dataset: start.GetDataset(), source: start.GetSource(), submitter: start.GetSubmitterOrgCode(),
		received: start.GetReceivedTime().AsTime().UTC(), trace: newTraceparent(), keepAll: keepAll, listLimit: listLimit, producer: p,
		resp:       &dmicv1.SubmitRecordsResponse{SubmissionId: id, Attempt: start.GetAttempt(), ContentSha256: start.GetContentSha256()},
		firstLines: record.NewFirstLines(),
	}
}

// normalSubmitter is a submitter as a request names it, as ingest keeps it.
func normalSubmitter(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// add takes one decoded item. Undecodable items are answered and also sent to
// the rejected topic, so that the provider's data-quality feedback in
// ClickHouse counts them like any other rejection.
func (s *submission) add(ctx context.Context, it record.Item) error {
	if it.Err != nil {
		f := record.FailureOf(it.Err)
		s.resp.Rejected++
		if s.listing(false) {
			s.resp.Results = append(s.resp.Results, &dmicv1.RecordResult{LineNumber: it.Line, Failures: []*dmicv1.Failure{f}})
		}
		if err := s.queue(ctx, s.deadLetter(it.Line, f)); err != nil {
			return err
		}
		return s.queue(ctx, s.refusedOutcome(it, f))
	}
	ds := it.Dataset
	submitter := envelope.Submitter(s.submitter, s.source, it.Record)
	body, err := record.EncodeJSON(ds, it.Record)
	if err != nil {
		return fmt.Errorf("line %d: encode: %w", it.Line, err)
	}
	if len(body) > limits.MaxRecordBytes {
		// A CSV row or a re-encoded line can be larger than the line that
		// was read: the limit is on what reaches dmic.raw.
		de := record.TooLong(it.Line, len(body))
		de.RecordID = record.ShownID(it.Record)
		return s.add(ctx, record.Item{Line: it.Line, Err: de})
	}
	raw := envelope.Raw{Dataset: ds, Source: s.source, Submitter: submitter, SubmissionID: s.id, Received: s.received, Line: it.Line, Traceparent: s.trace}
	key := envelope.RecordKey(submitter, s.source, ds, it.Record)
	if it.Record.GetCdsUniqueIdentifier() != "" { // none: REQ-001's, not a duplicate
		// Two lines are duplicates when they would be one record: one key.
		raw.DuplicateOfLine = s.firstLines.See(ds, key, it.Line)
	}
	s.resp.Accepted++
	if s.keepAll && s.listing(true) {
		s.resp.Results = append(s.resp.Results, &dmicv1.RecordResult{LineNumber: it.Line, RecordId: record.ShownID(it.Record), Accepted: true})
	}
	return s.queue(ctx, kafka.Message{
		Topic:   topics.Raw,
		Key:     []byte(key),
		Value:   body,
		Headers: kafkapipe.ToKafkaHeaders(raw.Headers()),
		// Validate judges by the message timestamp: the receipt time, so that
		// every record of a submission is judged by one version, however long
		// it took to send (envelope.Received).
		Time: s.received,
	})
}

// listing says whether a result of the kind (accepted or not) goes on the
// answer's list, or is only counted as omitted: a body of millions of bad
// lines once made an answer of 28 MB and held every result in memory until
// the end (issue 12). Each kind has its own budget, so that a file's
// failures are listed even after thousands of accepted lines.
func (s *submission) listing(accepted bool) bool {
	i := 0
	if accepted {
		i = 1
	}
	if s.listed[i] >= s.listLimit {
		s.resp.ResultsOmitted++
		return false
	}
	s.listed[i]++
	return true
}

func (s *submission) deadLetter(line int64, f *dmicv1.Failure) kafka.Message {
	dl := &dmicv1.DeadLetter{
		Stage:        "ingest",
		Failures:     []*dmicv1.Failure{f},
		Header:       s.header(line),
		SourceTopic:  "ingest:" + s.id,
		SourceOffset: line,
		RejectedTime: timestamppb.New(s.received),
		ProviderCode: s.submitter,
	}
	v, _ := proto.Marshal(dl)
	return kafka.Message{Topic: topics.Rejected, Key: []byte(s.id), Value: v}
}

// header is the envelope of a record refused at the door: what is known of it.
func (s *submission) header(line int64) *dmicv1.EnvelopeHeader {
	return &dmicv1.EnvelopeHeader{
		Dataset: s.dataset, Source: s.source, SubmitterOrgCode: s.submitter, SubmissionId: s.id,
		ReceivedTime: timestamppb.New(s.received), Traceparent: s.trace, LineNumber: line,
	}
}

// refusedOutcome is the verdict on a line that could not be decoded, for the
// submission report: it is judged here, as validate never sees it.
func (s *submission) refusedOutcome(it record.Item, f *dmicv1.Failure) kafka.Message {
	o := &validationv1.ValidationOutcome{
		Header:        s.header(it.Line),
		Outcome:       validationv1.Outcome_OUTCOME_REJECTED,
		Failures:      []*dmicv1.Failure{f},
		Stage:         "ingest",
		ValidatedTime: timestamppb.New(s.received),
		ProviderCode:  s.submitter,
	}
	if de, ok := it.Err.(*record.DecodeError); ok {
		o.RecordId = de.RecordID
	}
	v, _ := proto.Marshal(o)
	return kafka.Message{Topic: topics.ValidationOutcomes, Key: []byte(s.id), Value: v}
}

// receipt is this attempt's receipt in state: RECEIVING (its start),
// RECEIVED (what the submission held, so that its report can tell when every
// record has been judged) or ABANDONED.
func (s *submission) receipt(state validationv1.SubmissionState) *validationv1.SubmissionReceipt {
	r := proto.Clone(s.start).(*validationv1.SubmissionReceipt)
	r.State = state
	if state == validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED {
		r.Records, r.Refused = s.resp.Accepted+s.resp.Rejected, s.resp.Rejected
	}
	return r
}

func receiptMessage(r *validationv1.SubmissionReceipt) kafka.Message {
	v, _ := proto.Marshal(r)
	return kafka.Message{Topic: topics.Submissions, Key: []byte(r.GetSubmissionId()), Value: v}
}

// begin sends the attempt's start receipt, on its own and acknowledged before
// any record: the store then knows the submission is being received, and
// does not count it until it is received in full.
func (s *submission) begin(ctx context.Context) error {
	if err := s.producer.WriteMessages(ctx, receiptMessage(s.receipt(validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING))); err != nil {
		return fmt.Errorf("submission %s: produce its start receipt: %w", s.id, err)
	}
	return nil
}

func (s *submission) queue(ctx context.Context, m kafka.Message) error {
	s.pending = append(s.pending, m)
	if len(s.pending) >= flushEvery {
		return s.flush(ctx)
	}
	return nil
}

// flush produces what is pending and returns once the broker acknowledged it.
func (s *submission) flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.producer.WriteMessages(ctx, s.pending...); err != nil {
		return fmt.Errorf("submission %s: produce %d messages: %w", s.id, len(s.pending), err)
	}
	s.pending = s.pending[:0]
	return nil
}

// finish sends what is pending together with the attempt's final receipt.
func (s *submission) finish(ctx context.Context) error {
	final := s.receipt(validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED)
	s.pending = append(s.pending, receiptMessage(final))
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.final = final
	return nil
}
