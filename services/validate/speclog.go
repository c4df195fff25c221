package validate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/topics"
)

// SpecLog is the durable list of specification documents loaded at run time:
// the dmic.specifications topic. Every validate instance replays it at start
// and follows it, so a document loaded through any instance reaches them all
// and survives restarts. The topic has one partition, so every instance
// applies documents in the same order.
type SpecLog struct {
	brokers []string
	w       *kafka.Writer
}

// NewSpecLog uses w (acks from all replicas) to publish.
func NewSpecLog(brokers []string, w *kafka.Writer) *SpecLog {
	return &SpecLog{brokers: brokers, w: w}
}

// Publish appends a document under key (id@version) and returns once the
// broker acknowledged it.
func (l *SpecLog) Publish(ctx context.Context, key string, doc []byte) error {
	if err := l.w.WriteMessages(ctx, kafka.Message{Topic: topics.Specifications, Key: []byte(key), Value: doc}); err != nil {
		return fmt.Errorf("publish specification %s to %s: %w", key, topics.Specifications, err)
	}
	return nil
}

// Follow calls apply for every document on the log, oldest first, then for
// every new one until ctx ends. caughtUp is called once, when every document
// that was on the log when Follow started has been applied (at once when the
// log is empty), so that a caller can wait for it before validating.
func (l *SpecLog) Follow(ctx context.Context, apply func(offset int64, doc []byte), caughtUp func()) error {
	end, err := l.endOffset(ctx)
	if err != nil {
		return err
	}
	if end == 0 {
		caughtUp()
		caughtUp = nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: l.brokers, Topic: topics.Specifications, Partition: 0,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return fmt.Errorf("follow %s: %w", topics.Specifications, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s: %w", topics.Specifications, err)
		}
		apply(m.Offset, m.Value)
		if caughtUp != nil && m.Offset >= end-1 {
			caughtUp()
			caughtUp = nil
		}
	}
}

// endOffset is the offset the next document will get.
func (l *SpecLog) endOffset(ctx context.Context) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(l.brokers...), Timeout: 10 * time.Second}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topics.Specifications: {kafka.LastOffsetOf(0)}},
	})
	if err != nil {
		return 0, fmt.Errorf("end of %s: %w", topics.Specifications, err)
	}
	for _, p := range resp.Topics[topics.Specifications] {
		if p.Error != nil {
			return 0, fmt.Errorf("end of %s: %w", topics.Specifications, p.Error)
		}
		return p.LastOffset, nil
	}
	return 0, errors.New("end of " + topics.Specifications + ": partition 0 not found")
}
