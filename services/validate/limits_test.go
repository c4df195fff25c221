package validate_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/record/recordtest"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate"
)

// TestRecordLimitStraightToKafka: records produced straight to dmic.raw
// (not through ingest) at the record limit, one byte over it, and at the
// 1,020,000 bytes of issue 10 are judged or dead-lettered with a bounded
// excerpt, and the good record behind them is validated: none holds the
// partition. A value above the topics' max.message.bytes never gets in.
func TestRecordLimitStraightToKafka(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(1))
	admin, vc := brokertest.Admin(t, b), brokertest.As(t, b, validate.Access().Principal)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hdrs := envelope.Raw{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, Source: dmicv1.Source_SOURCE_PROVIDER, Submitter: "RXX"}.Headers()
	values := []string{
		recordtest.OutpatientOfSize(t, "BRXXK1", limits.MaxRecordBytes),
		recordtest.OutpatientOfSize(t, "BRXXK2", limits.MaxRecordBytes+1),
		recordtest.OutpatientOfSize(t, "BRXXK3", 1_020_000),
		recordtest.Outpatient("BRXXK4"),
	}
	// A producer that is not dmic's (an operator's): its batch limit is the
	// broker's.
	op := brokertest.As(t, b, topics.Operator)
	w := &kafka.Writer{Addr: op.Addr(), Transport: op.Transport(), BatchBytes: 4 << 20, RequiredAcks: kafka.RequireAll, BatchSize: 1}
	defer w.Close()
	for _, v := range values {
		if err := w.WriteMessages(ctx, kafka.Message{Topic: topics.Raw, Key: []byte("k"), Value: []byte(v), Headers: kafkapipe.ToKafkaHeaders(hdrs)}); err != nil {
			t.Fatalf("produce %d bytes: %v", len(v), err)
		}
	}
	err := w.WriteMessages(ctx, kafka.Message{Topic: topics.Raw, Key: []byte("k"), Value: make([]byte, limits.TopicMaxMessageBytes+1)})
	if err == nil || !kafkapipe.IsPermanent(err) {
		t.Errorf("a value above max.message.bytes: %v, want the broker's permanent refusal", err)
	}

	out := kafkapipe.NewWriter(vc)
	defer out.Close()
	reader := kafkapipe.NewReader(vc, validate.Access().Group, topics.Raw)
	defer reader.Close()
	runner := pipeline.NewRunner(pipeline.Config{Stage: "validate", MaxBatch: 100, BatchWait: 20 * time.Millisecond}, reader,
		newStage(), kafkapipe.Sink{W: out}, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.NewMetrics(prometheus.NewRegistry()))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	for runner.Processed() < 4 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil || runner.Processed() != 4 {
		t.Fatalf("processed %d of 4: %v", runner.Processed(), err)
	}

	dls := map[int64]*dmicv1.DeadLetter{}
	for _, m := range readTopic(t, ctx, admin, topics.Rejected, 3) {
		dl := &dmicv1.DeadLetter{}
		if err := proto.Unmarshal(m.Value, dl); err != nil {
			t.Fatal(err)
		}
		if len(m.Value) > limits.MaxMessageBytes || len(dl.Payload) > limits.DeadLetterExcerptBytes {
			t.Errorf("dead letter of offset %d: %d bytes, payload %d", dl.SourceOffset, len(m.Value), len(dl.Payload))
		}
		dls[dl.SourceOffset] = dl
	}
	for _, off := range []int64{1, 2} {
		dl := dls[off]
		if dl == nil || dl.Failures[0].GetRuleId() != record.RuleTooLong || dl.PayloadBytes != int64(len(values[off])) || !dl.PayloadTruncated {
			t.Errorf("offset %d (%d bytes): dead letter %v, want %s with its size and an excerpt", off, len(values[off]), dl, record.RuleTooLong)
		}
	}
	// At the limit it is read and judged: its padded HRG code breaks a rule.
	if dl := dls[0]; dl == nil || dl.Failures[0].GetRuleId() == record.RuleTooLong {
		t.Errorf("offset 0 (at the limit): %v, want judged by the specification", dl)
	}
	got := readTopic(t, ctx, admin, topics.Validated, 1)
	if len(got) != 1 || !strings.Contains(string(got[0].Key), "BRXXK4") {
		t.Errorf("validated: %d messages, want the good record BRXXK4", len(got))
	}
}

// readTopic reads n messages of topic from its start.
func readTopic(t *testing.T, ctx context.Context, c kafkaconn.Cluster, topic string, n int) []kafka.Message {
	t.Helper()
	r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond, MaxBytes: 16 << 20})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("read %s: %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}
