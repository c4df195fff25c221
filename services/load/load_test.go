package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

// garbage is a length-delimited field claiming 100 bytes that are not there:
// no protobuf message decodes it.
var garbage = []byte{0x0a, 0x64, 0x01}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	v, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// decoded is rec as the load stage decodes it from dmic.assigned (or
// dmic.reconciled, or dmic.validation-outcomes): the row the sink writes.
func decoded(t *testing.T, topic string, rec proto.Message) load.Row {
	t.Helper()
	row, err := load.Processor{Clock: clock.Fixed(loadTime)}.Decode(pipeline.Message{Topic: topic, Value: marshal(t, rec)})
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// loadTime is when the tests' rows are loaded.
var loadTime = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func TestProcessorRoutes(t *testing.T) {
	act := &dmicv1.DeidentifiedRecord{MatchKey: "apc|RJ7|A1", Activity: &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: "A1"},
		Assignment: &dmicv1.Assignment{CommissionerCode: "36L"}}
	rec := &dmicv1.ReconciliationResult{MatchKey: "apc|RJ7|A1", Status: dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED, Sequence: 3}
	dl := &dmicv1.DeadLetter{Stage: "validate", SourceTopic: topics.Raw, SourcePartition: 4, SourceOffset: 10,
		Payload: []byte(`{"nhs_number":"9434765919"}`), RecordId: "A2",
		Failures: []*dmicv1.Failure{{RuleId: "NHS-002", Field: "nhs_number"}}}
	dlWant := proto.Clone(dl).(*dmicv1.DeadLetter)
	dlWant.Payload = nil
	outcome := &validationv1.ValidationOutcome{Header: &dmicv1.EnvelopeHeader{SubmissionId: "sub-1", LineNumber: 3},
		RecordId: "A3", Outcome: validationv1.Outcome_OUTCOME_REJECTED, Stage: "validate",
		Failures: []*dmicv1.Failure{{RuleId: "NHS-002", Field: "nhs_number", Severity: dmicv1.Severity_SEVERITY_ERROR}}}
	receipt := &validationv1.SubmissionReceipt{SubmissionId: "sub-1", Records: 10, Refused: 1, Transport: "http"}

	tests := []struct {
		name string
		msg  pipeline.Message
		want load.Row
	}{
		{"assigned", pipeline.Message{Topic: topics.Assigned, Value: marshal(t, act)}, load.Activity{Row: chstore.PackActivity(act, loadTime)}},
		{"reconciled", pipeline.Message{Topic: topics.Reconciled, Value: marshal(t, rec)}, load.Reconciliation{Row: chstore.PackReconciliation(rec)}},
		{"validation outcome", pipeline.Message{Topic: topics.ValidationOutcomes, Value: marshal(t, outcome)}, load.Outcome{Row: chstore.PackOutcome(outcome)}},
		{"submission receipt", pipeline.Message{Topic: topics.Submissions, Value: marshal(t, receipt)}, load.Receipt{Receipt: receipt}},
		{"dead letter without its payload", pipeline.Message{Topic: topics.Rejected, Partition: 1, Offset: 8, Value: marshal(t, dl)},
			load.Rejection{DeadLetter: dlWant}},
		{"dead letter without a source gets its own position",
			pipeline.Message{Topic: topics.Rejected, Partition: 2, Offset: 9, Value: marshal(t, &dmicv1.DeadLetter{Stage: "ingest"})},
			load.Rejection{DeadLetter: &dmicv1.DeadLetter{Stage: "ingest", SourceTopic: topics.Rejected, SourcePartition: 2, SourceOffset: 9}}},
		{"undecodable dead letter becomes a rejection row", pipeline.Message{Topic: topics.Rejected, Partition: 5, Offset: 77, Value: garbage},
			load.Rejection{DeadLetter: &dmicv1.DeadLetter{Stage: "load", SourceTopic: topics.Rejected, SourcePartition: 5, SourceOffset: 77,
				Failures: []*dmicv1.Failure{{RuleId: "STAGE-DECODE", Severity: dmicv1.Severity_SEVERITY_ERROR,
					Message: "dead letter is not a dmic.v1.DeadLetter"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := load.Processor{Clock: clock.Fixed(loadTime)}.Process(context.Background(), tt.msg)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(outs) != 1 {
				t.Fatalf("got %d outputs, want 1", len(outs))
			}
			rows, messages, err := pipeline.SplitRows[load.Row](outs)
			if err != nil || len(rows) != 1 || len(messages) != 0 {
				t.Fatalf("SplitRows = %d rows, %d Kafka messages, %v; want one row", len(rows), len(messages), err)
			}
			if fmt.Sprintf("%T", rows[0]) != fmt.Sprintf("%T", tt.want) {
				t.Fatalf("row is a %T, want a %T", rows[0], tt.want)
			}
			switch tt.want.(type) {
			case load.Activity, load.Reconciliation, load.Outcome:
				// Packed: the row of the table, as chstore makes it.
				if !reflect.DeepEqual(rows[0], tt.want) {
					t.Errorf("row = %v, want %v", rows[0], tt.want)
				}
			default:
				if got, want := rowMessage(rows[0]), rowMessage(tt.want); !proto.Equal(got, want) {
					t.Errorf("row = %v, want %v", got, want)
				}
			}
		})
	}
}

// An entry of dmic.audit becomes an audit row with its offset; one without
// an id is named by its place on the trail.
func TestProcessorAuditEntries(t *testing.T) {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	e := audit.Entry{ID: "2e75b9ccf53e40f3", Time: at, Service: "validate", Protocol: "grpc", Action: "/dmic.v1.ControlService/Pause",
		Outcome: audit.Refused, Reason: "role", Detail: "may not", Peer: "10.1.2.3:5",
		Caller: &identity.Identity{Org: "0DA", Role: identity.Analyst, Name: "Ann", Method: identity.MTLS, Serial: "7c"}}
	for _, tc := range []struct {
		name   string
		entry  audit.Entry
		wantID string
	}{
		{"an entry", e, e.ID},
		{"without an id", audit.Entry{Outcome: audit.Refused, Time: at}, "dmic.audit@0/41"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := json.Marshal(tc.entry)
			if err != nil {
				t.Fatal(err)
			}
			outs, err := load.Processor{}.Process(context.Background(), pipeline.Message{Topic: topics.Audit, Offset: 41, Value: v})
			if err != nil {
				t.Fatal(err)
			}
			rows, _, err := pipeline.SplitRows[load.Row](outs)
			if err != nil || len(rows) != 1 {
				t.Fatalf("rows %v, %v", rows, err)
			}
			got, ok := rows[0].(load.AuditEntry)
			want := tc.entry
			want.ID = tc.wantID
			if !ok || got.Row.Offset != 41 || !reflect.DeepEqual(got.Row.Entry, want) {
				t.Errorf("row %+v, want %+v at offset 41", rows[0], want)
			}
		})
	}
}

// rowMessage is what row carries.
func rowMessage(row load.Row) proto.Message {
	switch r := row.(type) {
	case load.Rejection:
		return r.DeadLetter
	case load.Receipt:
		return r.Receipt
	}
	panic(fmt.Sprintf("row of type %T", row))
}

func TestProcessorRejects(t *testing.T) {
	for _, topic := range []string{topics.Assigned, topics.Reconciled, topics.ValidationOutcomes, topics.Submissions, topics.Audit} {
		t.Run(topic, func(t *testing.T) {
			outs, err := load.Processor{}.Process(context.Background(), pipeline.Message{Topic: topic, Value: garbage})
			if len(outs) != 0 {
				t.Errorf("got %d outputs, want none", len(outs))
			}
			var rej *pipeline.Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("error = %v, want *pipeline.Rejection", err)
			}
			if len(rej.Failures) != 1 || rej.Failures[0].GetRuleId() != "STAGE-DECODE" {
				t.Errorf("failures = %v, want one STAGE-DECODE", rej.Failures)
			}
		})
	}
	t.Run("unexpected topic", func(t *testing.T) {
		outs, err := load.Processor{}.Process(context.Background(), pipeline.Message{Topic: topics.Raw, Value: []byte("{}")})
		if err == nil || len(outs) != 0 {
			t.Fatalf("Process = %v, %v; want an error and no outputs", outs, err)
		}
		var rej *pipeline.Rejection
		if errors.As(err, &rej) {
			t.Errorf("error %v is a rejection, want a plain error", err)
		}
	})
}

// fakeStore records what each Store method was given. The sink writes the
// tables at once, each from its own goroutine: every method appends to its
// own table's slice, and the call log they share is guarded.
type fakeStore struct {
	mu      sync.Mutex
	calls   []string
	acts    []chstore.PackedActivity
	recs    []chstore.PackedReconciliation
	rejs    []*dmicv1.DeadLetter
	outs    []chstore.PackedOutcome
	rcpts   []*validationv1.SubmissionReceipt
	audit   []chstore.AuditRow
	reruns  []*assignmentv1.CamRerunRow
	failOn  string
	failErr error
}

func (s *fakeStore) fail(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
	if s.failOn == name {
		return s.failErr
	}
	return nil
}

func (s *fakeStore) WritePackedActivity(_ context.Context, rows []chstore.PackedActivity) error {
	s.acts = append(s.acts, rows...)
	return s.fail("activity")
}

func (s *fakeStore) WriteRejections(_ context.Context, dls []*dmicv1.DeadLetter) error {
	s.rejs = append(s.rejs, dls...)
	return s.fail("rejections")
}

func (s *fakeStore) WritePackedReconciliation(_ context.Context, rows []chstore.PackedReconciliation) error {
	s.recs = append(s.recs, rows...)
	return s.fail("reconciliation")
}

func (s *fakeStore) WritePackedOutcomes(_ context.Context, rows []chstore.PackedOutcome) error {
	s.outs = append(s.outs, rows...)
	return s.fail("outcomes")
}

func (s *fakeStore) WriteReceipts(_ context.Context, rs []*validationv1.SubmissionReceipt) error {
	s.rcpts = append(s.rcpts, rs...)
	return s.fail("receipts")
}

func (s *fakeStore) WriteAudit(_ context.Context, rs []chstore.AuditRow) error {
	s.audit = append(s.audit, rs...)
	return s.fail("audit")
}

func (s *fakeStore) WriteCamReruns(_ context.Context, rs []*assignmentv1.CamRerunRow) error {
	s.reruns = append(s.reruns, rs...)
	return s.fail("cam_rerun")
}

type fakeKafka struct {
	writes [][]pipeline.Output
	err    error
}

func (k *fakeKafka) Write(_ context.Context, outs []pipeline.Output) error {
	k.writes = append(k.writes, outs)
	return k.err
}

func TestSinkSplits(t *testing.T) {
	act1 := decoded(t, topics.Assigned, &dmicv1.DeidentifiedRecord{MatchKey: "a1"}).(load.Activity)
	act2 := decoded(t, topics.Assigned, &dmicv1.DeidentifiedRecord{MatchKey: "a2"}).(load.Activity)
	rec := decoded(t, topics.Reconciled, &dmicv1.ReconciliationResult{MatchKey: "r1"}).(load.Reconciliation)
	row := &dmicv1.DeadLetter{Stage: "validate", RecordId: "row"}
	own := &dmicv1.DeadLetter{Stage: "load", RecordId: "own"}
	out1 := decoded(t, topics.ValidationOutcomes, &validationv1.ValidationOutcome{RecordId: "o1"}).(load.Outcome)
	out2 := decoded(t, topics.ValidationOutcomes, &validationv1.ValidationOutcome{RecordId: "o2"}).(load.Outcome)
	rcpt := &validationv1.SubmissionReceipt{SubmissionId: "s1"}
	ownValue := marshal(t, own)
	outs := []pipeline.Output{
		rowOut(out1),
		rowOut(act1),
		rowOut(load.Receipt{Receipt: rcpt}),
		rowOut(load.Rejection{DeadLetter: row}),
		{Topic: topics.Rejected, Key: []byte("k"), Value: ownValue}, // load's own dead letter
		rowOut(rec),
		{Topic: "some.topic", Value: []byte("x")},
		rowOut(act2),
		rowOut(out2),
	}
	store, kf := &fakeStore{}, &fakeKafka{}
	if err := (load.Sink{Store: store, Kafka: kf}).Write(context.Background(), outs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !reflect.DeepEqual(store.acts, []chstore.PackedActivity{act1.Row, act2.Row}) {
		t.Errorf("activity rows = %v, want a1, a2 in order", store.acts)
	}
	if !reflect.DeepEqual(store.recs, []chstore.PackedReconciliation{rec.Row}) {
		t.Errorf("reconciliation rows = %v, want r1", store.recs)
	}
	if len(store.rejs) != 1 || store.rejs[0] != row {
		t.Errorf("rejection rows = %v, want only the dead letter routed to the table", store.rejs)
	}
	if !reflect.DeepEqual(store.outs, []chstore.PackedOutcome{out1.Row, out2.Row}) {
		t.Errorf("outcome rows = %v, want o1, o2 in order", store.outs)
	}
	if len(store.rcpts) != 1 || store.rcpts[0] != rcpt {
		t.Errorf("receipt rows = %v, want s1", store.rcpts)
	}
	if i, j := slices.Index(store.calls, "receipts"), slices.Index(store.calls, "outcomes"); i < 0 || j < i {
		t.Errorf("store calls = %v, want receipts written before outcomes", store.calls)
	}
	if len(kf.writes) != 1 {
		t.Fatalf("Kafka writes = %d, want 1", len(kf.writes))
	}
	if k := kf.writes[0]; len(k) != 2 || k[0].Topic != topics.Rejected || !bytes.Equal(k[0].Value, ownValue) || k[1].Topic != "some.topic" {
		t.Errorf("Kafka outputs = %+v, want load's own dead letter and the other output", k)
	}
}

// rowOut is row as the load stage hands it to the runner.
func rowOut(row load.Row) pipeline.Output { return pipeline.RowOutput(row) }

// TestSinkRefusesAForeignRow: a row of a type the load sink does not take
// (a wiring bug) is refused for good, so that the runner dead-letters the
// message instead of retrying forever, and nothing is written.
func TestSinkRefusesAForeignRow(t *testing.T) {
	store, kf := &fakeStore{}, &fakeKafka{}
	outs := []pipeline.Output{rowOut(decoded(t, topics.Assigned, &dmicv1.DeidentifiedRecord{})), pipeline.RowOutput("not a load.Row")}
	err := (load.Sink{Store: store, Kafka: kf}).Write(context.Background(), outs)
	if !pipeline.IsPermanent(err) {
		t.Fatalf("Write = %v, want a permanent error", err)
	}
	if len(store.calls) != 0 || len(kf.writes) != 0 {
		t.Errorf("wrote %v to the store and %d times to Kafka, want nothing", store.calls, len(kf.writes))
	}
}

func TestSinkSkipsKafkaWhenNothingForIt(t *testing.T) {
	store, kf := &fakeStore{}, &fakeKafka{}
	outs := []pipeline.Output{rowOut(decoded(t, topics.Assigned, &dmicv1.DeidentifiedRecord{}))}
	if err := (load.Sink{Store: store, Kafka: kf}).Write(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	if len(kf.writes) != 0 {
		t.Errorf("Kafka written %d times, want 0", len(kf.writes))
	}
}

// A failed write must reach the runner, which then retries the batch and
// commits nothing.
func TestSinkReturnsErrors(t *testing.T) {
	boom := errors.New("clickhouse down")
	outs := []pipeline.Output{
		rowOut(decoded(t, topics.Assigned, &dmicv1.DeidentifiedRecord{})),
		rowOut(decoded(t, topics.Reconciled, &dmicv1.ReconciliationResult{})),
		rowOut(load.Rejection{DeadLetter: &dmicv1.DeadLetter{}}),
		rowOut(decoded(t, topics.ValidationOutcomes, &validationv1.ValidationOutcome{})),
		rowOut(load.Receipt{Receipt: &validationv1.SubmissionReceipt{}}),
		rowOut(load.AuditEntry{Row: chstore.AuditRow{Entry: audit.Entry{ID: "a1", Outcome: audit.Refused}}}),
		rowOut(load.CamRerun{Row: &assignmentv1.CamRerunRow{RunId: "r1", RecordKey: "k1"}}),
		{Topic: topics.Rejected, Value: []byte("a dead letter")},
	}
	for _, failOn := range []string{"activity", "reconciliation", "rejections", "receipts", "outcomes", "audit", "cam_rerun", "kafka"} {
		t.Run(failOn, func(t *testing.T) {
			store, kf := &fakeStore{failOn: failOn, failErr: boom}, &fakeKafka{}
			if failOn == "kafka" {
				kf.err = boom
			}
			err := (load.Sink{Store: store, Kafka: kf}).Write(context.Background(), outs)
			if !errors.Is(err, boom) {
				t.Fatalf("Write = %v, want %v", err, boom)
			}
			if failOn != "kafka" && len(kf.writes) != 0 {
				t.Errorf("Kafka written after the store failed")
			}
		})
	}
}
