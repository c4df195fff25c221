package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// deadLetters reads n dead letters of the rejected topic, by source offset.
func deadLetters(t *testing.T, kc kafkaconn.Cluster, n int) map[int64]*dmicv1.DeadLetter {
	t.Helper()
	out := map[int64]*dmicv1.DeadLetter{}
	for _, m := range readAll(t, kc, topics.Rejected, n, 20*time.Second) {
		dl := &dmicv1.DeadLetter{}
		if err := proto.Unmarshal(m.Value, dl); err != nil {
			t.Fatal(err)
		}
		if len(m.Value) > limits.MaxMessageBytes {
			t.Errorf("a dead letter of %d bytes: above the %d-byte limit", len(m.Value), limits.MaxMessageBytes)
		}
		out[dl.SourceOffset] = dl
	}
	if len(out) != n {
		t.Fatalf("%d dead letters, want %d", len(out), n)
	}
	return out
}

// produceValues writes values to the input topic's partition 0, in order.
func produceValues(t *testing.T, kc kafkaconn.Cluster, values ...[]byte) {
	t.Helper()
	w := kafkapipe.NewWriter(kc, kafkapipe.WithBalancer(kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })))
	defer w.Close()
	for i, v := range values {
		// One at a time: a batch of several large values would be refused
		// whole by the writer's own batch limit.
		if err := w.WriteMessages(context.Background(), kafka.Message{Topic: in, Key: []byte("k" + strconv.Itoa(i)), Value: v}); err != nil {
			t.Fatalf("produce value %d (%d bytes): %v", i, len(v), err)
		}
	}
}

// TestOversizeOutputIsDeadLetteredNotRetried: a stage whose output for one
// message would exceed limits.MaxMessageBytes dead-letters that message with
// MSG-TOO-LARGE and a bounded excerpt, and the good messages around it go
// through (issue 10: one 1 MB field halted validate for everyone).
func TestOversizeOutputIsDeadLetteredNotRetried(t *testing.T) {
	kc := setup(t)
	// The stage echoes its input, padded to the size the input names.
	grow := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		n, err := strconv.Atoi(string(bytes.TrimRight(m.Value, "x")))
		if err != nil {
			return nil, err
		}
		return []pipeline.Output{{Topic: out, Key: m.Key, Value: bytes.Repeat([]byte("y"), n)}}, nil
	})
	// The largest value a stage may write, measured as the runner does.
	fits := limits.MaxMessageBytes - pipeline.MessageSize(pipeline.Output{Key: []byte("k0")})
	sizes := []int{10, fits, fits + 1, 20}
	var values [][]byte
	for i, n := range sizes {
		v := []byte(strconv.Itoa(n))
		if i == 2 { // a large input too: its dead letter keeps an excerpt
			v = append(v, bytes.Repeat([]byte("x"), 300_000)...)
		}
		values = append(values, v)
	}
	produceValues(t, kc, values...)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r, reader := newRunner(kc, "g-size", grow, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "4 processed", func() bool { return r.Processed() == 4 })
	stop()

	outs := readAll(t, kc, out, 3, 20*time.Second)
	var got []int
	for _, m := range outs {
		got = append(got, len(m.Value))
	}
	slices.Sort(got)
	if len(got) != 3 || got[0] != 10 || got[1] != 20 || got[2] != fits {
		t.Errorf("outputs of %v bytes, want [10 20 %d]", got, fits)
	}
	dl := deadLetters(t, kc, 1)[2]
	if dl == nil || dl.Failures[0].GetRuleId() != pipeline.RuleMessageTooLarge ||
		!strings.Contains(dl.Failures[0].GetMessage(), strconv.Itoa(limits.MaxMessageBytes)) {
		t.Fatalf("dead letter of offset 2 = %v, want %s naming the limit", dl, pipeline.RuleMessageTooLarge)
	}
	if len(dl.Payload) != limits.DeadLetterExcerptBytes || !dl.PayloadTruncated || dl.PayloadBytes != int64(len(values[2])) ||
		dl.SourceTopic != in || dl.SourcePartition != 0 {
		t.Errorf("dead letter keeps %d bytes (truncated %v) of %d, from %s/%d; want an excerpt of %d, the size %d and the position",
			len(dl.Payload), dl.PayloadTruncated, dl.PayloadBytes, dl.SourceTopic, dl.SourcePartition, limits.DeadLetterExcerptBytes, len(values[2]))
	}
}

// TestBrokerRefusalDeadLettersTheMessage: when the broker refuses a
// message for good (here a topic whose max.message.bytes is smaller than
// one output), the runner finds that message, dead-letters it with
// SINK-REFUSED, writes the others and moves on.
func TestBrokerRefusalDeadLettersTheMessage(t *testing.T) {
	kc := setup(t)
	const small = "test.small"
	createTopics(t, context.Background(), kc, kafka.TopicConfig{Topic: small, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2000"}}})
	toSmall := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		n, _ := strconv.Atoi(string(m.Value))
		return []pipeline.Output{{Topic: small, Key: m.Key, Value: bytes.Repeat([]byte("z"), n)}}, nil
	})
	produceValues(t, kc, []byte("100"), []byte("5000"), []byte("200"))
	w := kafkapipe.NewWriter(kc, kafkapipe.WithCompression(0))
	defer w.Close()
	r, reader := newRunner(kc, "g-refused", toSmall, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "3 processed", func() bool { return r.Processed() == 3 })
	stop()

	var got []int
	for _, m := range readAll(t, kc, small, 2, 20*time.Second) {
		got = append(got, len(m.Value))
	}
	if len(got) != 2 || got[0]+got[1] != 300 {
		t.Errorf("written %v, want the 100- and 200-byte outputs", got)
	}
	dl := deadLetters(t, kc, 1)[1]
	if dl == nil || dl.Failures[0].GetRuleId() != pipeline.RuleWriteRefused || string(dl.Payload) != "5000" {
		t.Errorf("dead letter of offset 1 = %v, want %s with the input", dl, pipeline.RuleWriteRefused)
	}
	if serving, reason := r.Health(); !serving {
		t.Errorf("after a refusal dealt with: not serving (%s)", reason)
	}
}

// TestHealthReportsAStuckSink: a sink that cannot write (here: its topic
// does not exist yet, which the broker says may change) is retried without
// committing, and after UnhealthyAttempts the runner reports not serving,
// naming the batch and the error; once the topic exists it writes, commits
// and reports serving again, with a last-progress time.
func TestHealthReportsAStuckSink(t *testing.T) {
	kc := setup(t)
	const later = "test.later"
	pass := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		return []pipeline.Output{{Topic: later, Key: m.Key, Value: m.Value}}, nil
	})
	produceValues(t, kc, []byte("1"), []byte("2"))
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	reader := kafkapipe.NewReader(kc, "g-health", in)
	defer reader.Close()
	r := pipeline.NewRunner(pipeline.Config{Stage: "test", MaxBatch: 10, BatchWait: 10 * time.Millisecond, UnhealthyAttempts: 2},
		reader, pass, kafkapipe.Sink{W: w}, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.NewMetrics(prometheus.NewRegistry()))
	if serving, _ := r.Health(); !serving || !r.LastProgress().IsZero() {
		t.Fatalf("a new runner: serving %v, last progress %v; want serving, never", serving, r.LastProgress())
	}
	stop := run(t, r)
	defer stop()
	var reason string
	waitFor(t, "not serving", func() bool {
		var serving bool
		serving, reason = r.Health()
		return !serving
	})
	if !strings.Contains(reason, "cannot write") || !strings.Contains(reason, in+"/0@0") || r.Processed() != 0 {
		t.Errorf("reason %q, processed %d; want the write, the batch position and nothing committed", reason, r.Processed())
	}
	conn, err := kc.DialController(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = conn.CreateTopics(kafka.TopicConfig{Topic: later, NumPartitions: 1, ReplicationFactor: 1})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 processed", func() bool { return r.Processed() == 2 })
	if serving, reason := r.Health(); !serving || r.LastProgress().IsZero() {
		t.Errorf("after recovery: serving %v (%s), last progress %v", serving, reason, r.LastProgress())
	}
}

// TestRowSinkRefusalDeadLettersAReleasedMessage: a message whose outputs are
// all rows is released once processed (its value is garbage at once, not
// held until the batch is written); if the row sink then refuses it for
// good, its dead letter names where it is and how large it was, without an
// excerpt, and the other rows are written.
func TestRowSinkRefusalDeadLettersAReleasedMessage(t *testing.T) {
	kc := setup(t)
	values := [][]byte{[]byte("keep-1"), []byte("refuse-this-one"), []byte("keep-2")}
	produceValues(t, kc, values...)
	toRow := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		return []pipeline.Output{pipeline.RowOutput(string(m.Value))}, nil
	})
	w := kafkapipe.NewWriter(kc, kafkapipe.WithCompression(0))
	defer w.Close()
	var mu sync.Mutex
	var written []string
	sink := pipeline.SinkFunc(func(ctx context.Context, outs []pipeline.Output) error {
		rows, msgs, err := pipeline.SplitRows[string](outs)
		if err != nil {
			return err
		}
		if slices.Contains(rows, "refuse-this-one") {
			return pipeline.Permanent(errors.New("the table refuses this row"))
		}
		mu.Lock()
		written = append(written, rows...)
		mu.Unlock()
		if len(msgs) > 0 {
			return kafkapipe.Sink{W: w}.Write(ctx, msgs)
		}
		return nil
	})
	r, reader := newRunner(kc, "g-row-refused", toRow, sink)
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "3 processed", func() bool { return r.Processed() == 3 })
	stop()

	mu.Lock()
	slices.Sort(written)
	if !slices.Equal(written, []string{"keep-1", "keep-2"}) {
		t.Errorf("rows written %q, want the other two", written)
	}
	mu.Unlock()
	dl := deadLetters(t, kc, 1)[1]
	if dl == nil || dl.Failures[0].GetRuleId() != pipeline.RuleWriteRefused {
		t.Fatalf("dead letter of offset 1 = %v, want %s", dl, pipeline.RuleWriteRefused)
	}
	if len(dl.Payload) != 0 || !dl.PayloadTruncated || dl.PayloadBytes != int64(len(values[1])) || dl.SourceTopic != in {
		t.Errorf("dead letter keeps %q (truncated %v) of %d bytes from %s; want no excerpt, truncated, %d bytes, from %s",
			dl.Payload, dl.PayloadTruncated, dl.PayloadBytes, dl.SourceTopic, len(values[1]), in)
	}
}
