package load_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

// Outcomes and receipts read from their topics reach ClickHouse and make the
// submission's report, redeliveries included.
func TestOutcomesReachClickHouse(t *testing.T) {
	conn, cfg := chstoretest.Database(t, "dmic_load_test")
	db := cfg.Database
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var c dqreporttest.Case
	for _, cc := range dqreporttest.Cases() {
		if cc.Name == "accepted, warned, rejected and refused at the door" {
			c = cc
		}
	}
	var msgs []pipeline.Message
	offset := int64(0)
	add := func(topic string, m proto.Message) {
		msgs = append(msgs, pipeline.Message{Topic: topic, Offset: offset, Value: marshal(t, m)})
		offset++
	}
	for range 2 { // everything delivered twice
		for _, r := range c.Receipts {
			add(topics.Submissions, r)
		}
		for _, b := range c.Batches {
			for _, o := range b {
				add(topics.ValidationOutcomes, o)
			}
		}
	}
	var outs []pipeline.Output
	for _, m := range msgs {
		o, err := load.Processor{}.Process(ctx, m)
		if err != nil {
			t.Fatalf("Process %s@%d: %v", m.Topic, m.Offset, err)
		}
		outs = append(outs, o...)
	}
	kf := &fakeKafka{}
	if err := (load.Sink{Store: chstore.NewWriter(conn, db), Kafka: kf}).Write(ctx, outs); err != nil {
		t.Fatalf("Sink.Write: %v", err)
	}
	if len(kf.writes) != 0 {
		t.Errorf("Kafka written %d times, want none", len(kf.writes))
	}
	got, found, err := chstore.SubmissionReport(ctx, conn, db, c.SubmissionID, c.Limit)
	if err != nil || !found {
		t.Fatalf("SubmissionReport = %v, %v", found, err)
	}
	if !proto.Equal(got, c.Want) {
		t.Errorf("report:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(c.Want))
	}
}

// trail is an audit.Publisher that keeps what it is given, as dmic.audit
// would: in order, one partition.
type trail struct{ msgs []pipeline.Message }

func (tr *trail) Publish(_ context.Context, _ string, v []byte, _ ...pipeline.Header) error {
	tr.msgs = append(tr.msgs, pipeline.Message{Topic: topics.Audit, Offset: int64(len(tr.msgs)), Value: v})
	return nil
}

// Entries a service records on dmic.audit reach the audit table through
// load, as the writer user, once each however often they are delivered, and
// analysts read them; an NHS number a caller sent does not get there.
func TestAuditReachesClickHouse(t *testing.T) {
	_, cfg := chstoretest.Database(t, "dmic_load_audit")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer, analyst := openAs(ctx, t, cfg, chaccess.Writer), openAs(ctx, t, cfg, chaccess.Analyst)

	tr := &trail{}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	log := audit.New(tr, "ingest", clock.Fixed(at), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	rcf := &identity.Identity{Org: "RCF", Role: identity.Provider, Name: "RCF PAS", Method: identity.MTLS, Serial: "33"}
	for _, e := range []audit.Entry{
		{ID: "s1", Protocol: "http", Action: "POST /v1/submissions", Outcome: audit.Allowed, Caller: rcf},
		{ID: "s1", Protocol: "http", Action: "POST /v1/submissions", Outcome: audit.Done, Caller: rcf, Subject: "sub-1"},
		{ID: "s2", Protocol: "http", Action: "POST /v1/submissions", Outcome: audit.Refused, Reason: "other-providers", Caller: rcf,
			Detail: `provider:RCF (RCF PAS) may submit only its own records: 1 record(s) name another provider: line 1 ("9434765919")`},
	} {
		if err := log.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var outs []pipeline.Output
	for range 2 { // delivered twice
		for _, m := range tr.msgs {
			o, err := load.Processor{}.Process(ctx, m)
			if err != nil {
				t.Fatalf("Process %s@%d: %v", m.Topic, m.Offset, err)
			}
			outs = append(outs, o...)
		}
	}
	if err := (load.Sink{Store: chstore.NewWriter(writer, cfg.Database), Kafka: &fakeKafka{}}).Write(ctx, outs); err != nil {
		t.Fatalf("Sink.Write: %v", err)
	}
	got, err := chstore.ReadAudit(ctx, analyst, cfg.Database, chstore.AuditFilter{})
	if err != nil {
		t.Fatalf("the analyst reads the audit table: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(got), got)
	}
	for _, r := range got {
		if r.Service != "ingest" || r.CallerOrg != "RCF" || r.CallerRole != "provider" || r.CallerSerial != "33" || !r.Time.Equal(at) {
			t.Errorf("entry %+v", r)
		}
		if strings.Contains(r.Detail, "9434765919") {
			t.Errorf("an NHS number reached the audit table: %q", r.Detail)
		}
	}
}

// The rows of a commissioner-assignment re-run reach the cam_rerun table
// through load, as the writer user, once each however often they are
// delivered; the table says which moved, and analysts read it (the summary
// of docs/commissioner-assignment.md).
func TestCamRerunsReachClickHouse(t *testing.T) {
	_, cfg := chstoretest.Database(t, "dmic_load_rerun")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer, analyst := openAs(ctx, t, cfg, chaccess.Writer), openAs(ctx, t, cfg, chaccess.Analyst)

	run := timestamppb.New(time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC))
	rows := []*assignmentv1.CamRerunRow{
		{RecordKey: "RVR|apc|S1", FromCommissioner: "36L", ToCommissioner: "13R", FromStep: "C-6", ToStep: "C-6", ActivityCount: 1},
		{RecordKey: "RVR|apc|S2", FromCommissioner: "02T", ToCommissioner: "85J", FromStep: "C-6", ToStep: "C-0b", ActivityCount: 1},
		{RecordKey: "RVR|local_flow|L1", FromCommissioner: "36L", ToCommissioner: "36L", FromStep: "C-5", ToStep: "J", ActivityCount: 3, PricePence: 12345},
		{RecordKey: "RVR|apc|G1", FromCommissioner: "36L", ToCommissioner: "36L", FromStep: "C-5", ToStep: "C-5", ActivityCount: 1},
	}
	var msgs []pipeline.Message
	for range 2 { // delivered twice
		for i, r := range rows {
			r.RunId, r.RunTime, r.CamVersion = "0123456789abcdef", run, "2024/25"
			msgs = append(msgs, pipeline.Message{Topic: topics.CamReruns, Offset: int64(i), Value: marshal(t, r)})
		}
	}
	var outs []pipeline.Output
	for _, m := range msgs {
		o, err := load.Processor{}.Process(ctx, m)
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		outs = append(outs, o...)
	}
	if _, err := (load.Processor{}).Process(ctx, pipeline.Message{Topic: topics.CamReruns, Value: []byte("junk")}); err == nil {
		t.Error("a message that is no re-run row was accepted")
	}
	if err := (load.Sink{Store: chstore.NewWriter(writer, cfg.Database), Kafka: &fakeKafka{}}).Write(ctx, outs); err != nil {
		t.Fatalf("Sink.Write: %v", err)
	}
	q := fmt.Sprintf(`SELECT count(), sum(moved), sum(step_changed), sumIf(activity_count, moved = 1), sum(activity_count), sum(price_pence)
FROM %s.cam_rerun FINAL WHERE run_id = '0123456789abcdef'`, cfg.Database)
	var n, moved, stepOnly uint64
	var movedActivity, activity, price int64
	if err := analyst.QueryRow(ctx, q).Scan(&n, &moved, &stepOnly, &movedActivity, &activity, &price); err != nil {
		t.Fatalf("the analyst reads cam_rerun: %v", err)
	}
	if n != 4 || moved != 2 || stepOnly != 1 || movedActivity != 2 || activity != 6 || price != 12345 {
		t.Errorf("rows %d, moved %d, step only %d, moved activity %d, activity %d, price %d; want 4, 2, 1, 2, 6, 12345 (each row once)",
			n, moved, stepOnly, movedActivity, activity, price)
	}
}

// openAs connects to cfg's database as user until the test ends.
func openAs(ctx context.Context, t *testing.T, cfg chstore.Config, user string) driver.Conn {
	t.Helper()
	c, err := chstoretest.As(t, cfg, user).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
