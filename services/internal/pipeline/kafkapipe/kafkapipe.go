// Package kafkapipe is the runner's Kafka adapter: the consumer-group reader
// and the producer the services use, the conversion between Kafka messages
// and the runner's own (pipeline.Message, pipeline.Output), and which broker
// errors retrying cannot cure. It is the one place where the stage contract
// meets kafka-go: the runner and the stages do not import it.
package kafkapipe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// Reader is a consumer-group reader for the runner (pipeline.Reader): it
// converts each message it fetches to a pipeline.Message, and commits the
// offsets of the messages it is given.
type Reader struct {
	R *kafka.Reader
}

var _ pipeline.Reader = Reader{}

// FetchMessage fetches the next message without committing it.
func (r Reader) FetchMessage(ctx context.Context) (pipeline.Message, error) {
	m, err := r.R.FetchMessage(ctx)
	if err != nil {
		return pipeline.Message{}, err
	}
	return FromKafka(m), nil
}

// CommitMessages commits the offsets of msgs: kafka-go needs only their
// topic, partition and offset, so one slice per batch is all it costs.
func (r Reader) CommitMessages(ctx context.Context, msgs ...pipeline.Message) error {
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	}
	return r.R.CommitMessages(ctx, km...)
}

// Close leaves the consumer group.
func (r Reader) Close() error { return r.R.Close() }

// NewReader returns a consumer-group reader that commits only when told to.
func NewReader(c kafkaconn.Cluster, group string, topicNames ...string) Reader {
	return Reader{R: c.NewReader(kafka.ReaderConfig{
		GroupID:     group,
		GroupTopics: topicNames,
		// Synchronous commits: CommitMessages returns once the broker has the
		// offsets, which is what "commit after the write" needs.
		CommitInterval: 0,
		StartOffset:    kafka.FirstOffset,
		// MinBytes above 1 made the embedded broker spend three times the CPU
		// (measured): it answers waiting fetches poorly.
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     10000,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
	})}
}

// ParseCompression reads a codec name: none, gzip, snappy, lz4 or zstd.
func ParseCompression(s string) (kafka.Compression, error) {
	switch s {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("compression %q is not none, gzip, snappy, lz4 or zstd", s)
}

// Sink writes outputs to Kafka, each to its own topic.
type Sink struct {
	W *Writer
}

var _ pipeline.Sink = Sink{}

// Write produces all outputs and returns once the broker acknowledged them.
// An error that retrying cannot cure is marked pipeline.Permanent, so that
// the runner dead-letters the messages it refuses. A row (an output for a
// non-Kafka sink) is a wiring bug, refused the same way.
func (s Sink) Write(ctx context.Context, outs []pipeline.Output) error {
	msgs := make([]kafka.Message, len(outs))
	for i, o := range outs {
		if o.IsRow() {
			return pipeline.Permanent(fmt.Errorf("output %d of %d is a row, not a Kafka message: the stage needs a row sink", i+1, len(outs)))
		}
		msgs[i] = ToKafka(o)
	}
	if err := s.W.WriteMessages(ctx, msgs...); err != nil {
		err = fmt.Errorf("produce %d messages: %w", len(msgs), err)
		if IsPermanent(err) {
			return pipeline.Permanent(err)
		}
		return err
	}
	return nil
}

// FromKafka is m as the runner sees it. Key and Value are the same slices;
// headers are copied into a new slice (one allocation per message that has
// any), their values shared.
func FromKafka(m kafka.Message) pipeline.Message {
	return pipeline.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value,
		Headers: FromKafkaHeaders(m.Headers), Time: m.Time}
}

// FromKafkaHeaders converts headers, sharing their values.
func FromKafkaHeaders(hs []kafka.Header) []pipeline.Header {
	return convertHeaders[pipeline.Header](hs)
}

// ToKafka is the Kafka message of o. Key and Value are the same slices. An
// output that names its partition carries it, marked for Balancer.
func ToKafka(o pipeline.Output) kafka.Message {
	m := kafka.Message{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: ToKafkaHeaders(o.Headers)}
	if p, ok := o.Partition(); ok {
		m.Partition, m.WriterData = p, pinned{}
	}
	return m
}

// pinned marks a message whose partition its producer chose (kafka-go's
// Message.Partition is otherwise ignored by a Writer: its balancer decides).
type pinned struct{}

// Balancer is the writers' balancer: a message that ToKafka pinned goes to
// the partition it names, any other by the murmur2 hash of its key. A
// changelog kept beside its input partition (reconcile's) pins its messages:
// its partition p then holds the state of input partition p by
// construction, whatever the two topics' partition counts or the input
// producer's partitioner, which murmur2 alone would not promise.
type Balancer struct{ murmur2 kafka.Murmur2Balancer }

// Balance implements kafka.Balancer. A pinned partition the topic does not
// have is still returned: the write then fails (and is retried, with the
// stage's health saying so) rather than putting the message elsewhere.
func (b Balancer) Balance(m kafka.Message, partitions ...int) int {
	if _, ok := m.WriterData.(pinned); ok {
		return m.Partition
	}
	return b.murmur2.Balance(m, partitions...)
}

// ToKafkaHeaders converts headers, sharing their values.
func ToKafkaHeaders(hs []pipeline.Header) []kafka.Header { return convertHeaders[kafka.Header](hs) }

// header is the shape kafka-go's and the runner's headers share.
type header interface {
	~struct {
		Key   string
		Value []byte
	}
}

// convertHeaders copies hs into a new slice of the other header type; the
// values are shared, not copied. No headers: nil, no allocation.
func convertHeaders[To, From header](hs []From) []To {
	if len(hs) == 0 {
		return nil
	}
	out := make([]To, len(hs))
	for i, h := range hs {
		out[i] = To(h)
	}
	return out
}

// permanentKafka are the broker's answers that the same produce request will
// get again however often it is sent. Anything else (a broker or leader
// unavailable, a timeout, a network error, an authorisation that an operator
// may yet grant) is worth retrying.
var permanentKafka = []error{
	kafka.MessageSizeTooLarge,
	kafka.RecordListTooLarge,
	kafka.InvalidRecord,
	kafka.InvalidTimestamp,
}

// IsPermanent says whether err is one that retrying cannot cure: marked by
// pipeline.Permanent, kafka-go's MessageTooLargeError (a message above the
// writer's BatchBytes), or a broker error in permanentKafka for any message
// of a kafka.WriteErrors.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if pipeline.IsPermanent(err) {
		return true
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && IsPermanent(e) {
				return true
			}
		}
		return false
	}
	for _, k := range permanentKafka {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
