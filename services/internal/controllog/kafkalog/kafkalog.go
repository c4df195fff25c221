// Package kafkalog is the Kafka adapter of a control log (controllog.Log):
// a one-partition topic, published to with acks from all replicas and read
// from its first offset.
package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/segmentio/kafka-go"
)

var _ controllog.Log = (*Log)(nil)

// Log is a control log on one Kafka topic (partition 0 is read; the topic should have one).
type Log struct {
	cluster kafkaconn.Cluster
	topic   string
	w       *kafkapipe.Writer
}

// New reads topic on c and publishes to it with w (acks from all replicas).
func New(c kafkaconn.Cluster, topic string, w *kafkapipe.Writer) *Log {
	return &Log{cluster: c, topic: topic, w: w}
}

// Publish appends an entry under key, with headers, and returns once the
// broker acknowledged it.
func (l *Log) Publish(ctx context.Context, key string, value []byte, headers ...pipeline.Header) error {
	if err := l.w.WriteMessages(ctx, kafka.Message{Topic: l.topic, Key: []byte(key), Value: value, Headers: kafkapipe.ToKafkaHeaders(headers)}); err != nil {
		return fmt.Errorf("publish %s to %s: %w", key, l.topic, err)
	}
	return nil
}

// FollowEntries calls apply for every entry on the log, oldest first, then
// for every new one until ctx ends. caughtUp is called once, when every entry
// that was on the log when it started has been applied (at once when the log
// is empty), so that a caller can wait for it before acting.
func (l *Log) FollowEntries(ctx context.Context, apply func(controllog.Entry), caughtUp func()) error {
	end, err := l.endOffset(ctx)
	if err != nil {
		return err
	}
	if end == 0 {
		caughtUp()
		caughtUp = nil
	}
	r := l.cluster.NewReader(kafka.ReaderConfig{
		Topic: l.topic, Partition: 0,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return fmt.Errorf("follow %s: %w", l.topic, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s: %w", l.topic, err)
		}
		apply(controllog.Entry{Offset: m.Offset, Value: m.Value, Headers: kafkapipe.FromKafkaHeaders(m.Headers)})
		if caughtUp != nil && m.Offset >= end-1 {
			caughtUp()
			caughtUp = nil
		}
	}
}

// endOffset is the offset the next document will get.
func (l *Log) endOffset(ctx context.Context) (int64, error) {
	client := l.cluster.Client(10 * time.Second)
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{l.topic: {kafka.LastOffsetOf(0)}},
	})
	if err != nil {
		return 0, fmt.Errorf("end of %s: %w", l.topic, err)
	}
	for _, p := range resp.Topics[l.topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("end of %s: %w", l.topic, p.Error)
		}
		return p.LastOffset, nil
	}
	return 0, errors.New("end of " + l.topic + ": partition 0 not found")
}
