package kafkapipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// Writer is the services' Kafka producer. A call of WriteMessages returns
// once the broker has acknowledged every message of it (acks=all), like a
// synchronous kafka.Writer, but it sends them differently:
//
//   - One produce request per broker carries every topic and partition of a
//     write. kafka-go's Writer sends one request per topic-partition, so a
//     stage's batch of outputs spread over six partitions of three topics
//     cost eighteen requests, each a wake-up and system calls on both sides
//     (issue 15 measured 57 produce requests per 1,000 records in ingest).
//   - Nothing waits for a batch to fill. kafka-go's Writer holds every
//     partition's batch until BatchSize messages or BatchTimeout (5 ms here),
//     so each synchronous write waited 5 ms for nothing: a stage writes its
//     whole batch in one call, and ingest makes five writes in a row per
//     submission. Here a write is sent at once; writes that arrive while a
//     request is in flight (ingest's concurrent submissions, the audit and
//     attempt logs) go together in the next one, so concurrency still
//     batches (a group commit) with no timer.
//   - No per-batch allocation of BatchSize message slots: kafka-go's Writer
//     allocated and zeroed 5,000 × 152 bytes for every batch it started, per
//     topic and partition, whatever the batch held (12 to 14% of reconcile's
//     CPU in a profile).
//
// The messages of one partition are sent in their order, at most
// limits.WriterBatchBytes of them per request (the topics' max.message.bytes
// bounds a record batch); more follow in a next request once the first is
// acknowledged. Failures are per partition: a broker's error code, retried
// up to three times when it is temporary (as kafka-go's Writer did), then
// returned as a kafka.WriteErrors naming each message's error, so that
// IsPermanent judges it as before.
type Writer struct {
	addr        net.Addr
	transport   kafka.RoundTripper
	balancer    kafka.Balancer
	batchBytes  int64
	compression kafka.Compression
	maxAttempts int
	timeout     time.Duration

	mu      sync.Mutex
	queue   []*write
	sending bool
	closed  bool

	requests, messages atomic.Int64
}

// write is one call of WriteMessages, queued for the sender.
type write struct {
	msgs []kafka.Message
	// parts is the partition of each message; errs its outcome.
	parts []int32
	errs  []error
	done  chan struct{}
}

// WriterOption tunes NewWriter.
type WriterOption func(*Writer)

// WithCompression sets the producer's compression codec (0: none).
func WithCompression(c kafka.Compression) WriterOption {
	return func(w *Writer) { w.compression = c }
}

// WithBalancer replaces the murmur2 balancer (Balancer): a test that
// writes to one partition.
func WithBalancer(b kafka.Balancer) WriterOption {
	return func(w *Writer) { w.balancer = b }
}

// WithMaxAttempts sets how often a temporary broker error is tried (3; 1:
// once, for a test of a refusal).
func WithMaxAttempts(n int) WriterOption {
	return func(w *Writer) { w.maxAttempts = max(n, 1) }
}

// NewWriter returns the services' producer. Its balancer is murmur2, the
// Java client's default, so a keyed record lands on the same partition
// whoever produced it (kcat: -X partitioner=murmur2_random), unless the
// output named its partition (pipeline.Output.ToPartition, see Balancer).
// Compression defaults to lz4, which saves network and disk on a real
// cluster.
func NewWriter(c kafkaconn.Cluster, opts ...WriterOption) *Writer {
	w := &Writer{
		addr:      c.Addr(),
		transport: c.Transport(),
		balancer:  Balancer{},
		// Below the topics' max.message.bytes, above the largest message a
		// stage may write (package limits).
		batchBytes:  limits.WriterBatchBytes,
		compression: kafka.Lz4,
		maxAttempts: 3,
		timeout:     10 * time.Second,
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// WriterStats are a writer's totals since it was made.
type WriterStats struct {
	// Requests is the produce requests sent, Messages the messages in them.
	Requests, Messages int64
}

// Stats returns the writer's totals (not reset by the call).
func (w *Writer) Stats() WriterStats {
	return WriterStats{Requests: w.requests.Load(), Messages: w.messages.Load()}
}

// Close refuses further writes. Writes already queued are still sent.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

// WriteMessages produces msgs and returns once the broker acknowledged all
// of them, or with the errors of those it did not take (kafka.WriteErrors,
// in the order of msgs). A message above the writer's batch bytes is a
// kafka.MessageTooLargeError before anything is sent, as with kafka-go's
// Writer. If ctx ends first, the messages may still be written.
func (w *Writer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i := range msgs {
		if int64(kafkaSize(msgs[i])) > w.batchBytes {
			remain := make([]kafka.Message, 0, len(msgs)-1)
			remain = append(append(remain, msgs[:i]...), msgs[i+1:]...)
			return kafka.MessageTooLargeError{Message: msgs[i], Remaining: remain}
		}
	}
	wr := &write{msgs: msgs, parts: make([]int32, len(msgs)), done: make(chan struct{})}
	counts := map[string]int{}
	for i := range msgs {
		t := msgs[i].Topic
		n, ok := counts[t]
		if !ok {
			var err error
			if n, err = w.partitions(ctx, t); err != nil {
				return fmt.Errorf("produce to %s: %w", t, err)
			}
			counts[t] = n
		}
		wr.parts[i] = int32(w.balancer.Balance(msgs[i], partitionList(n)...))
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return io.ErrClosedPipe
	}
	w.queue = append(w.queue, wr)
	if !w.sending {
		w.sending = true
		go w.send()
	}
	w.mu.Unlock()
	select {
	case <-wr.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, err := range wr.errs {
		if err != nil {
			return kafka.WriteErrors(wr.errs)
		}
	}
	return nil
}

// send writes what is queued, then what was queued meanwhile, until the
// queue is empty: one sender at a time, so writes that arrive during a
// request go together in the next.
func (w *Writer) send() {
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		if len(batch) == 0 {
			w.sending = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.produceAll(batch)
		for _, wr := range batch {
			close(wr.done)
		}
	}
}

// tp is a topic-partition.
type tp struct {
	topic     string
	partition int32
}

// ref is one message of a write.
type ref struct {
	w *write
	i int
}

// chunk is the messages of one partition sent in one request.
type chunk struct {
	tp    tp
	refs  []ref
	bytes int64
}

// produceAll sends every message of writes and sets each write's errs. The
// messages of a partition are cut into chunks of at most batchBytes; round
// k sends the k-th chunk of every partition, so a partition's messages stay
// in order, and a partition that failed sends nothing more.
func (w *Writer) produceAll(writes []*write) {
	var order []tp // partitions in the order first written, for stable requests
	chunks := map[tp][]*chunk{}
	for _, wr := range writes {
		wr.errs = make([]error, len(wr.msgs))
		for i := range wr.msgs {
			k := tp{wr.msgs[i].Topic, wr.parts[i]}
			cs := chunks[k]
			if cs == nil {
				order = append(order, k)
			}
			size := int64(kafkaSize(wr.msgs[i]))
			if len(cs) == 0 || cs[len(cs)-1].bytes+size > w.batchBytes {
				cs = append(cs, &chunk{tp: k})
				chunks[k] = cs
			}
			c := cs[len(cs)-1]
			c.refs = append(c.refs, ref{wr, i})
			c.bytes += size
		}
	}
	failed := map[tp]error{}
	for round := 0; ; round++ {
		var todo []*chunk
		for _, k := range order {
			if cs := chunks[k]; round < len(cs) {
				if err := failed[k]; err != nil {
					cs[round].fail(err)
					continue
				}
				todo = append(todo, cs[round])
			}
		}
		if len(todo) == 0 {
			return
		}
		for c, err := range w.produceRound(todo) {
			failed[c.tp] = err
			c.fail(err)
		}
	}
}

func (c *chunk) fail(err error) {
	for _, r := range c.refs {
		r.w.errs[r.i] = err
	}
}

// produceRound sends chunks (at most one per partition), one request per
// leader broker, retrying the partitions whose error is temporary. It
// returns the chunks that failed for good, with their errors.
func (w *Writer) produceRound(chunks []*chunk) map[*chunk]error {
	failed := map[*chunk]error{}
	backoff := 100 * time.Millisecond
	for attempt := 1; len(chunks) > 0; attempt++ {
		if attempt > 1 {
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
		}
		errs := w.produceOnce(chunks)
		var again []*chunk
		for _, c := range chunks {
			err, ok := errs[c]
			switch {
			case !ok:
			case attempt < w.maxAttempts && retriable(err):
				again = append(again, c)
			default:
				failed[c] = err
			}
		}
		chunks = again
	}
	return failed
}

// retriable: a broker's temporary error or a dropped connection, as
// kafka-go's Writer judged it.
func retriable(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, new(*net.OpError))
}

// produceOnce sends chunks once, a request per leader (concurrently), and
// returns the error of each chunk that was not taken.
func (w *Writer) produceOnce(chunks []*chunk) map[*chunk]error {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	byLeader, errs := w.leaders(ctx, chunks)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, group := range byLeader {
		wg.Go(func() {
			got := w.request(ctx, group)
			mu.Lock()
			defer mu.Unlock()
			for c, err := range got {
				errs[c] = err
			}
		})
	}
	wg.Wait()
	return errs
}

// request sends chunks, all led by one broker, in one produce request.
func (w *Writer) request(ctx context.Context, chunks []*chunk) map[*chunk]error {
	req := &produceAPI.Request{Acks: int16(kafka.RequireAll), Timeout: int32(w.timeout / time.Millisecond)}
	topicAt := map[string]int{}
	n := 0
	for _, c := range chunks {
		i, ok := topicAt[c.tp.topic]
		if !ok {
			i = len(req.Topics)
			topicAt[c.tp.topic] = i
			req.Topics = append(req.Topics, produceAPI.RequestTopic{Topic: c.tp.topic})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, produceAPI.RequestPartition{
			Partition: c.tp.partition,
			RecordSet: protocol.RecordSet{
				Attributes: protocol.Attributes(w.compression) & 7,
				Records:    &records{refs: c.refs},
			},
		})
		n += len(c.refs)
	}
	w.requests.Add(1)
	w.messages.Add(int64(n))
	errs := map[*chunk]error{}
	resp, err := w.transport.RoundTrip(ctx, w.addr, req)
	if err != nil {
		for _, c := range chunks {
			errs[c] = err
		}
		return errs
	}
	got := map[tp]error{}
	seen := map[tp]bool{}
	for _, t := range resp.(*produceAPI.Response).Topics {
		for _, p := range t.Partitions {
			k := tp{t.Topic, p.Partition}
			seen[k] = true
			if p.ErrorCode != 0 {
				got[k] = kafka.Error(p.ErrorCode)
			}
		}
	}
	for _, c := range chunks {
		if err := got[c.tp]; err != nil {
			errs[c] = fmt.Errorf("%s partition %d: %w", c.tp.topic, c.tp.partition, err)
		} else if !seen[c.tp] {
			errs[c] = fmt.Errorf("%s partition %d: the broker's answer left it out", c.tp.topic, c.tp.partition)
		}
	}
	return errs
}

// leaders groups chunks by the broker that leads their partition, from the
// transport's cached metadata; a chunk whose partition has no leader there
// is an error of its own.
func (w *Writer) leaders(ctx context.Context, chunks []*chunk) (map[int32][]*chunk, map[*chunk]error) {
	errs := map[*chunk]error{}
	var names []string
	seen := map[string]bool{}
	for _, c := range chunks {
		if !seen[c.tp.topic] {
			seen[c.tp.topic] = true
			names = append(names, c.tp.topic)
		}
	}
	meta, err := w.metadata(ctx, names)
	if err != nil {
		for _, c := range chunks {
			errs[c] = err
		}
		return nil, errs
	}
	leader := map[tp]int32{}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			leader[tp{t.Name, p.PartitionIndex}] = p.LeaderID
		}
	}
	out := map[int32][]*chunk{}
	for _, c := range chunks {
		id, ok := leader[c.tp]
		if !ok {
			errs[c] = fmt.Errorf("%s partition %d: %w", c.tp.topic, c.tp.partition, kafka.UnknownTopicOrPartition)
			continue
		}
		out[id] = append(out[id], c)
	}
	return out, errs
}

// metadata is the cluster's metadata for topics: kafka-go's transport
// answers it from its cache, refreshed in the background.
func (w *Writer) metadata(ctx context.Context, topics []string) (*metadataAPI.Response, error) {
	r, err := w.transport.RoundTrip(ctx, w.addr, &metadataAPI.Request{TopicNames: topics})
	if err != nil {
		return nil, err
	}
	meta := r.(*metadataAPI.Response)
	for _, t := range meta.Topics {
		if t.ErrorCode != 0 {
			return nil, fmt.Errorf("%s: %w", t.Name, kafka.Error(t.ErrorCode))
		}
	}
	return meta, nil
}

// partitions is topic's partition count.
func (w *Writer) partitions(ctx context.Context, topic string) (int, error) {
	meta, err := w.metadata(ctx, []string{topic})
	if err != nil {
		return 0, err
	}
	for _, t := range meta.Topics {
		if t.Name == topic {
			return len(t.Partitions), nil
		}
	}
	return 0, kafka.UnknownTopicOrPartition
}

// partitionList is 0 … n-1, the argument kafka-go's balancers take.
func partitionList(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// kafkaSize is m's size as kafka-go measures it against a batch's bytes:
// the one measure of pipeline.MessageSize.
func kafkaSize(m kafka.Message) int {
	n := pipeline.FramedSize(len(m.Key), len(m.Value))
	for _, h := range m.Headers {
		n += pipeline.HeaderSize(len(h.Key), len(h.Value))
	}
	return n
}

// records reads a chunk's messages as the protocol's records, reusing one
// record and its key and value readers (kafka-go's writer does the same).
type records struct {
	refs       []ref
	next       int
	rec        kafka.Record
	key, value bytesReader
}

func (r *records) ReadRecord() (*kafka.Record, error) {
	if r.next >= len(r.refs) {
		return nil, io.EOF
	}
	ref := r.refs[r.next]
	r.next++
	m := &ref.w.msgs[ref.i]
	r.rec = kafka.Record{Time: m.Time, Headers: m.Headers}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.rec.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }
