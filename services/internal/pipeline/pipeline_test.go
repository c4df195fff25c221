package pipeline_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

const (
	in  = "test.in"
	out = "test.out"
)

// setup starts a broker with dmic's topics and the test's own, and returns
// it as the superuser: the runner is under test here, not the ACL table.
func setup(t *testing.T) kafkaconn.Cluster {
	t.Helper()
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	kc := brokertest.Admin(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var cfgs []kafka.TopicConfig
	for _, name := range []string{in, out} {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: name, NumPartitions: 3, ReplicationFactor: 1})
	}
	createTopics(t, ctx, kc, cfgs...)
	return kc
}

// createTopics creates topics through kc's own pool, whose metadata cache
// then knows them.
func createTopics(t *testing.T, ctx context.Context, kc kafkaconn.Cluster, cfgs ...kafka.TopicConfig) {
	t.Helper()
	resp, err := kc.Client(10*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
}

func produce(t *testing.T, kc kafkaconn.Cluster, n int) {
	t.Helper()
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: in, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every message of topic until want are seen or the timeout.
func readAll(t *testing.T, kc kafkaconn.Cluster, topic string, want int, timeout time.Duration) []kafka.Message {
	t.Helper()
	r := kc.NewReader(kafka.ReaderConfig{GroupID: "reader-" + topic + strconv.FormatInt(time.Now().UnixNano(), 10),
		Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []kafka.Message
	for len(got) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			break
		}
		got = append(got, m)
	}
	// Anything beyond want (duplicates) shows up within a short grace period.
	gctx, gcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer gcancel()
	for {
		m, err := r.ReadMessage(gctx)
		if err != nil {
			break
		}
		got = append(got, m)
	}
	return got
}

// evenOnly passes even numbers through and rejects odd ones.
var evenOnly = pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	n, err := strconv.Atoi(string(m.Value))
	if err != nil {
		return nil, err
	}
	if n%2 == 1 {
		return nil, pipeline.Reject("TEST-ODD", "value", "odd numbers are not accepted")
	}
	return []pipeline.Output{{Topic: out, Key: m.Key, Value: m.Value}}, nil
})

func newRunner(kc kafkaconn.Cluster, group string, p pipeline.Processor, sink pipeline.Sink) (*pipeline.Runner, kafkapipe.Reader) {
	r := kafkapipe.NewReader(kc, group, in)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return pipeline.NewRunner(pipeline.Config{Stage: "test", MaxBatch: 100, BatchWait: 10 * time.Millisecond}, r, p, sink,
		log, pipeline.NewMetrics(prometheus.NewRegistry())), r
}

func run(t *testing.T, r *pipeline.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunnerProcessesAndDeadLetters(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 200)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r, reader := newRunner(kc, "g1", evenOnly, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "200 processed", func() bool { return r.Processed() == 200 })
	stop()

	if got := r.Rejected(); got != 100 {
		t.Errorf("rejected = %d, want 100", got)
	}
	outs := readAll(t, kc, out, 100, 10*time.Second)
	if len(outs) != 100 {
		t.Fatalf("output messages = %d, want 100", len(outs))
	}
	for _, m := range outs {
		n, _ := strconv.Atoi(string(m.Value))
		if n%2 != 0 {
			t.Errorf("odd value %d reached the output", n)
		}
	}
	dls := readAll(t, kc, topics.Rejected, 100, 10*time.Second)
	if len(dls) != 100 {
		t.Fatalf("dead letters = %d, want 100", len(dls))
	}
	dl := &dmicv1.DeadLetter{}
	if err := proto.Unmarshal(dls[0].Value, dl); err != nil {
		t.Fatal(err)
	}
	if dl.Stage != "test" || dl.SourceTopic != in || len(dl.Failures) != 1 || dl.Failures[0].RuleId != "TEST-ODD" || dl.Failures[0].Field != "value" {
		t.Errorf("dead letter = %v", dl)
	}
	n, _ := strconv.Atoi(string(dl.Payload))
	if n%2 != 1 {
		t.Errorf("dead letter payload %q is not the odd input", dl.Payload)
	}
	lag, err := kafkatopics.GroupLag(context.Background(), kc, "g1", in)
	if err != nil {
		t.Fatal(err)
	}
	if lag != 0 {
		t.Errorf("lag after processing everything = %d, want 0", lag)
	}
}

// flakySink fails its first failures writes, then delegates.
type flakySink struct {
	next     pipeline.Sink
	failures atomic.Int32
	calls    atomic.Int32
}

func (s *flakySink) Write(ctx context.Context, outs []pipeline.Output) error {
	s.calls.Add(1)
	if s.failures.Add(-1) >= 0 {
		return errors.New("sink down")
	}
	return s.next.Write(ctx, outs)
}

func TestRunnerRetriesSinkAndCommitsOnlyAfterWrite(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 50)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	sink := &flakySink{next: kafkapipe.Sink{W: w}}
	sink.failures.Store(3)
	r, reader := newRunner(kc, "g2", evenOnly, sink)
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "50 processed", func() bool { return r.Processed() == 50 })
	stop()
	if c := sink.calls.Load(); c < 4 {
		t.Errorf("sink called %d times, want the 3 failures retried", c)
	}
	if got := len(readAll(t, kc, out, 25, 10*time.Second)); got != 25 {
		t.Errorf("outputs = %d, want 25 (each exactly once)", got)
	}
}

// blockingSink never succeeds until released.
type blockingSink struct{}

func (blockingSink) Write(ctx context.Context, _ []pipeline.Output) error {
	return errors.New("ClickHouse down")
}

func TestUncommittedBatchIsReplayedByTheNextConsumer(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 30)
	r1, reader1 := newRunner(kc, "g3", evenOnly, blockingSink{})
	stop := run(t, r1)
	time.Sleep(1500 * time.Millisecond) // it fetches, fails to write, retries
	stop()
	reader1.Close()
	if r1.Processed() != 0 {
		t.Fatalf("processed = %d with a sink that never wrote", r1.Processed())
	}

	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r2, reader2 := newRunner(kc, "g3", evenOnly, kafkapipe.Sink{W: w})
	defer reader2.Close()
	stop2 := run(t, r2)
	waitFor(t, "all 30 replayed", func() bool { return r2.Processed() == 30 })
	stop2()
	if got := len(readAll(t, kc, out, 15, 10*time.Second)); got != 15 {
		t.Errorf("outputs = %d, want 15", got)
	}
}

func TestPauseStopsConsumingAndResumeDrains(t *testing.T) {
	kc := setup(t)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r, reader := newRunner(kc, "g4", evenOnly, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	defer stop()
	produce(t, kc, 10)
	waitFor(t, "first 10", func() bool { return r.Processed() == 10 })
	r.Pause()
	if !r.Paused() {
		t.Fatal("not paused")
	}
	time.Sleep(300 * time.Millisecond) // let a batch in flight finish
	before := r.Processed()
	produce(t, kc, 40)
	time.Sleep(time.Second)
	if got := r.Processed(); got != before {
		t.Fatalf("processed moved from %d to %d while paused", before, got)
	}
	r.Resume()
	waitFor(t, "backlog drained", func() bool { return r.Processed() == 50 })
}

func TestProcessorErrorOrPanicIsDeadLetteredNotFatal(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 5)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	var mu sync.Mutex
	seen := 0
	boom := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		mu.Lock()
		seen++
		mu.Unlock()
		if string(m.Value) == "3" {
			return nil, fmt.Errorf("unexpected shape")
		}
		if string(m.Value) == "4" {
			var nilMap map[string]int
			nilMap["boom"]++ // a bug: panics
		}
		return []pipeline.Output{{Topic: out, Value: m.Value}}, nil
	})
	r, reader := newRunner(kc, "g5", boom, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "5 processed", func() bool { return r.Processed() == 5 })
	stop()
	if r.Rejected() != 2 {
		t.Errorf("rejected = %d, want 2 (an error and a panic)", r.Rejected())
	}
	dls := readAll(t, kc, topics.Rejected, 2, 10*time.Second)
	if len(dls) != 2 {
		t.Fatalf("dead letters = %d", len(dls))
	}
	for _, m := range dls {
		dl := &dmicv1.DeadLetter{}
		_ = proto.Unmarshal(m.Value, dl)
		if dl.Failures[0].RuleId != "STAGE-ERROR" {
			t.Errorf("rule = %s, want STAGE-ERROR", dl.Failures[0].RuleId)
		}
		if string(dl.Payload) == "4" && !strings.Contains(dl.Failures[0].Message, "panicked") {
			t.Errorf("panic dead letter says %q", dl.Failures[0].Message)
		}
	}
}

// A full batch of large outputs must fit the broker's record-batch limit
// (1 MiB by default); a writer allowed larger batches is refused on every retry.
func TestFullBatchesOfLargeMessagesAreAccepted(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 2000)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	grow := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		// Random bytes: the writer compresses, and a repeated pattern would
		// shrink below the limit whatever the batch size.
		big := make([]byte, 4096)
		_, _ = crand.Read(big)
		// One key: the whole batch goes to one partition, in one record batch.
		return []pipeline.Output{{Topic: out, Key: []byte("one"), Value: append(append([]byte{}, m.Value...), big...)}}, nil
	})
	reader := kafkapipe.NewReader(kc, "g6", in)
	defer reader.Close()
	r := pipeline.NewRunner(pipeline.Config{Stage: "test", MaxBatch: 2000, BatchWait: time.Second}, reader, grow,
		kafkapipe.Sink{W: w}, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.NewMetrics(prometheus.NewRegistry()))
	stop := run(t, r)
	waitFor(t, "2000 large messages written", func() bool { return r.Processed() == 2000 })
	stop()
	if got := len(readAll(t, kc, out, 2000, 20*time.Second)); got != 2000 {
		t.Errorf("outputs = %d, want 2000", got)
	}
}

func TestRejectionCarriesOutputsAlong(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 20)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	verdicts := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		n, _ := strconv.Atoi(string(m.Value))
		verdict := pipeline.Output{Topic: out, Key: m.Key, Value: []byte("verdict:" + string(m.Value))}
		if n%2 == 1 {
			rej := pipeline.Reject("TEST-ODD", "value", "odd numbers are not accepted")
			rej.Also = []pipeline.Output{verdict}
			return nil, rej
		}
		return []pipeline.Output{verdict}, nil
	})
	r, reader := newRunner(kc, "g-also", verdicts, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "20 processed", func() bool { return r.Processed() == 20 })
	stop()
	if got := len(readAll(t, kc, out, 20, 10*time.Second)); got != 20 {
		t.Errorf("verdicts = %d, want one per message (20), rejected or not", got)
	}
	if got := len(readAll(t, kc, topics.Rejected, 10, 10*time.Second)); got != 10 {
		t.Errorf("dead letters = %d, want 10", got)
	}
}

// TestBatchesEndAtMaxBatchBytes: a batch ends once its messages hold
// MaxBatchBytes, well before MaxBatch, and every message is still processed:
// what a batch keeps live is bounded by its bytes (docs/performance.md,
// Memory).
func TestBatchesEndAtMaxBatchBytes(t *testing.T) {
	kc := setup(t)
	const n, size, bound = 60, 1000, 8000
	values := make([][]byte, n)
	for i := range values {
		values[i] = bytes.Repeat([]byte{'v'}, size)
	}
	produceValues(t, kc, values...)
	var mu sync.Mutex
	var batches []int
	sink := pipeline.SinkFunc(func(_ context.Context, outs []pipeline.Output) error {
		held := 0
		for _, o := range outs {
			held += len(o.Key) + len(o.Value)
		}
		mu.Lock()
		batches = append(batches, held)
		mu.Unlock()
		return nil
	})
	pass := pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
		return []pipeline.Output{{Topic: out, Key: m.Key, Value: m.Value}}, nil
	})
	reader := kafkapipe.NewReader(kc, "g-bytes", in)
	defer reader.Close()
	r := pipeline.NewRunner(pipeline.Config{Stage: "test", MaxBatch: 1000, MaxBatchBytes: bound, BatchWait: 2 * time.Second, IdleWait: time.Second},
		reader, pass, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.NewMetrics(prometheus.NewRegistry()))
	stop := run(t, r)
	waitFor(t, "every message processed", func() bool { return r.Processed() == n })
	stop()
	mu.Lock()
	defer mu.Unlock()
	// The message that reaches the bound is the batch's last.
	for i, b := range batches {
		if b >= bound+size+8 {
			t.Errorf("batch %d of %d held %d bytes, above the bound of %d and one message", i+1, len(batches), b, bound)
		}
	}
	if len(batches) < n*size/(bound+size+8) {
		t.Errorf("%d batches for %d bytes of messages, bound %d: %v", len(batches), n*size, bound, batches)
	}
}
