package kafkapipe

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// ReadAll calls apply with every message on topic when it is called,
// partition by partition, oldest first, and returns how many there were: how
// a stage rebuilds state it keeps on a compacted changelog (reconcile's)
// before it consumes. An error of apply stops the read and is returned.
func ReadAll(ctx context.Context, c kafkaconn.Cluster, topic string, apply func(pipeline.Message) error) (int, error) {
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var n int
	for _, t := range meta.Topics {
		if t.Error != nil {
			return n, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			read, err := readPartition(ctx, client, c, topic, p.ID, apply)
			n += read
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func readPartition(ctx context.Context, client *kafka.Client, c kafkaconn.Cluster, topic string, partition int, apply func(pipeline.Message) error) (int, error) {
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, fmt.Errorf("offsets of %s partition %d: %w", topic, partition, err)
	}
	po := offs.Topics[topic]
	if len(po) == 0 || po[0].Error != nil {
		return 0, fmt.Errorf("offsets of %s partition %d unavailable", topic, partition)
	}
	first, last := po[0].FirstOffset, po[0].LastOffset
	if last <= first {
		return 0, nil
	}
	r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, fmt.Errorf("seek %s partition %d: %w", topic, partition, err)
	}
	n := 0
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return n, fmt.Errorf("read %s partition %d: %w", topic, partition, err)
		}
		if err := apply(FromKafka(m)); err != nil {
			return n, err
		}
		n++
		// A compacted partition has gaps: the last message may sit below last-1.
		if m.Offset >= last-1 {
			return n, nil
		}
	}
}

// AllReader is the pipeline.ReadAll of topics on c.
func AllReader(c kafkaconn.Cluster) pipeline.ReadAll {
	return func(ctx context.Context, topic string, apply func(pipeline.Message) error) (int, error) {
		return ReadAll(ctx, c, topic, apply)
	}
}
