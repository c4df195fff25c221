package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/limits"
)

// NewReader returns a consumer-group reader that commits only when told to.
func NewReader(brokers []string, group string, topicNames ...string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
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
	})
}

// WriterOption tunes NewWriter.
type WriterOption func(*kafka.Writer)

// WithCompression sets the producer's compression codec (0: none).
func WithCompression(c kafka.Compression) WriterOption {
	return func(w *kafka.Writer) { w.Compression = c }
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

// NewWriter returns a writer tuned for batches. Its balancer is murmur2, the
// Java client's default, so a keyed record lands on the same partition whoever
// produced it (kcat: -X partitioner=murmur2_random). Compression defaults to
// lz4, which saves network and disk on a real cluster.
func NewWriter(brokers []string, opts ...WriterOption) *kafka.Writer {
	w := &kafka.Writer{
		Addr:      kafka.TCP(brokers...),
		Balancer:  &kafka.Murmur2Balancer{},
		BatchSize: 5000,
		// Below the topics' max.message.bytes, above the largest message a
		// stage may write (package limits).
		BatchBytes:   limits.WriterBatchBytes,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		MaxAttempts:  3,
		Compression:  kafka.Lz4,
		// Topics are created up front by topics.Ensure.
		AllowAutoTopicCreation: false,
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// KafkaSink writes outputs to Kafka, each to its own topic.
type KafkaSink struct {
	W *kafka.Writer
}

// Write produces all outputs and returns once the broker acknowledged them.
func (s KafkaSink) Write(ctx context.Context, outs []Output) error {
	msgs := make([]kafka.Message, len(outs))
	for i, o := range outs {
		msgs[i] = kafka.Message{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: o.Headers}
	}
	if err := s.W.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d messages: %w", len(msgs), err)
	}
	return nil
}
