package kafkapipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// PartitionLog is the pipeline.PartitionLog of topics on c: metadata, offset
// and fetch requests of one client, with no reader goroutines or buffers
// left between calls.
func PartitionLog(c kafkaconn.Cluster) pipeline.PartitionLog { return partitionLog{c: c} }

type partitionLog struct{ c kafkaconn.Cluster }

// fetchBytes bounds one fetch's answer, so that reading a changelog costs
// the reader at most this much memory at a time. It is well above the
// largest record batch (a topic's max.message.bytes), so that an answer
// always holds the batch after one that compaction emptied (Read).
const fetchBytes = 4 * limits.TopicMaxMessageBytes

func (l partitionLog) client() *kafka.Client { return l.c.Client(10 * time.Second) }

// Describe implements pipeline.PartitionLog.
func (l partitionLog) Describe(ctx context.Context, topic string) (pipeline.LogInfo, error) {
	meta, err := l.client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return pipeline.LogInfo{}, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return pipeline.LogInfo{}, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		return pipeline.LogInfo{Cluster: meta.ClusterID, Partitions: len(t.Partitions)}, nil
	}
	return pipeline.LogInfo{}, fmt.Errorf("metadata of %s: no such topic", topic)
}

// StartOffsets implements pipeline.PartitionLog.
func (l partitionLog) StartOffsets(ctx context.Context, topic string, partitions []int) (map[int]int64, error) {
	return l.offsets(ctx, topic, partitions, kafka.FirstOffsetOf, func(po kafka.PartitionOffsets) int64 { return po.FirstOffset })
}

// EndOffsets implements pipeline.PartitionLog.
func (l partitionLog) EndOffsets(ctx context.Context, topic string, partitions []int) (map[int]int64, error) {
	return l.offsets(ctx, topic, partitions, kafka.LastOffsetOf, func(po kafka.PartitionOffsets) int64 { return po.LastOffset })
}

// offsets asks for one kind of offset of every partition in one request (a
// broker refuses a request that names a partition twice).
func (l partitionLog) offsets(ctx context.Context, topic string, partitions []int, req func(int) kafka.OffsetRequest, pick func(kafka.PartitionOffsets) int64) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(partitions))
	for i, p := range partitions {
		reqs[i] = req(p)
	}
	resp, err := l.client().ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, len(partitions))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s partition %d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = pick(po)
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("offsets of %s: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}

// Read implements pipeline.PartitionLog with fetch requests of at most
// fetchBytes each. It stops at to, not at a count of messages: a compacted
// log has gaps. A broker answers with whole record batches, as many as fit
// in fetchBytes; a batch is at most the topics' max.message.bytes (about
// 1 MiB, package limits), so an answer that holds no message at or after
// the offset asked for means there is none left below the high watermark
// (compaction removed the last messages of the batch that held them).
func (l partitionLog) Read(ctx context.Context, topic string, partition int, from, to int64, apply func(pipeline.Message) error) (int, error) {
	client := l.client()
	n := 0
	for next := from; next < to; {
		resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: next,
			MinBytes: 1, MaxBytes: fetchBytes, MaxWait: 500 * time.Millisecond})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			return n, fmt.Errorf("read %s partition %d at %d: %w", topic, partition, next, err)
		}
		read, last, err := readRecords(resp.Records, topic, partition, next, to, apply)
		n += read
		if err != nil {
			return n, err
		}
		if last < next {
			return n, nil // nothing left at or after next
		}
		next = last + 1
	}
	return n, nil
}

// readRecords applies the records of one fetch answer whose offsets are in
// [from, to), and returns how many it applied and the last offset it saw
// (from-1 if none at or after from).
func readRecords(rr kafka.RecordReader, topic string, partition int, from, to int64, apply func(pipeline.Message) error) (int, int64, error) {
	n, last := 0, from-1
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return n, last, nil
		}
		if err != nil {
			return n, last, fmt.Errorf("read %s partition %d: %w", topic, partition, err)
		}
		if r.Offset < from {
			continue // a batch is sent whole: skip what was asked past
		}
		if r.Offset >= to {
			return n, last, nil
		}
		last = r.Offset
		key, err := protocol.ReadAll(r.Key)
		if err != nil {
			return n, last, fmt.Errorf("read %s partition %d offset %d: %w", topic, partition, r.Offset, err)
		}
		value, err := protocol.ReadAll(r.Value)
		if err != nil {
			return n, last, fmt.Errorf("read %s partition %d offset %d: %w", topic, partition, r.Offset, err)
		}
		m := pipeline.Message{Topic: topic, Partition: partition, Offset: r.Offset, Key: key, Value: value, Time: r.Time}
		if err := apply(m); err != nil {
			return n, last, err
		}
		n++
	}
}
