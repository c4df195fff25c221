package load_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
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
