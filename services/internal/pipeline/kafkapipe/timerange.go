package kafkapipe

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// offsetRange is [start, end) of one partition.
type offsetRange struct {
	partition  int
	start, end int64
}

// offsetRanges finds, per partition of topic, the first offset
// whose message time is at or after from, and the first at or after to (the
// end of the partition when none is).
func offsetRanges(ctx context.Context, c kafkaconn.Cluster, topic string, from, to time.Time) ([]offsetRange, error) {
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var partitions []int
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			partitions = append(partitions, p.ID)
		}
	}
	// One query per kind: a broker refuses a request naming a partition twice.
	list := func(req func(p int) kafka.OffsetRequest) (map[int]kafka.PartitionOffsets, error) {
		var reqs []kafka.OffsetRequest
		for _, p := range partitions {
			reqs = append(reqs, req(p))
		}
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("offsets of %s: %w", topic, err)
		}
		out := map[int]kafka.PartitionOffsets{}
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("offsets of %s partition %d: %w", topic, po.Partition, po.Error)
			}
			out[po.Partition] = po
		}
		return out, nil
	}
	ends, err := list(kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	// Message times are whole milliseconds: "at or after t" is "at or after
	// t rounded up to the millisecond", which keeps the boundaries the same
	// as the time check of each message read.
	starts, err := list(func(p int) kafka.OffsetRequest { return kafka.TimeOffsetOf(p, ceilMilli(from)) })
	if err != nil {
		return nil, err
	}
	stops, err := list(func(p int) kafka.OffsetRequest { return kafka.TimeOffsetOf(p, ceilMilli(to)) })
	if err != nil {
		return nil, err
	}
	var out []offsetRange
	for _, p := range partitions {
		end := ends[p].LastOffset
		start, ok := timeOffset(starts[p])
		if !ok {
			continue // nothing at or after from
		}
		if stop, ok := timeOffset(stops[p]); ok && stop < end {
			end = stop
		}
		if start < end {
			out = append(out, offsetRange{partition: p, start: start, end: end})
		}
	}
	return out, nil
}

func ceilMilli(t time.Time) time.Time {
	if f := t.Truncate(time.Millisecond); f.Before(t) {
		return f.Add(time.Millisecond)
	}
	return t
}

// timeOffset reads the answer to a time query: kafka-go files the offset
// found under Offsets, and reports "none" (offset -1) as a last offset.
func timeOffset(po kafka.PartitionOffsets) (int64, bool) {
	for off := range po.Offsets {
		if off >= 0 {
			return off, true
		}
	}
	return 0, false
}

// NewTimeRange is a reader of the messages of topic whose time is in
// [from, to), for a runner that re-processes a period (deidentify's replay
// with newly active keys). Once every message it handed out is committed and
// none is left, it calls done, which should end the run; a read error also
// calls done, and Err returns it.
func NewTimeRange(ctx context.Context, c kafkaconn.Cluster, topic string, from, to time.Time, done func()) (*TimeRange, error) {
	ranges, err := offsetRanges(ctx, c, topic, from, to)
	if err != nil {
		return nil, err
	}
	return &TimeRange{cluster: c, topic: topic, ranges: ranges, from: from, to: to, done: done}, nil
}

// Empty reports whether no message is in the range.
func (r *TimeRange) Empty() bool { return len(r.ranges) == 0 }

// Err is the read error that ended the range early, if any.
func (r *TimeRange) Err() error { return r.err }

// TimeRange hands the pipeline runner the messages of the offset ranges,
// one partition after another, skipping any whose time is outside [from, to)
// (message times need not grow with offsets). Once every message it handed
// out is committed, and none is left, it calls done, which ends the run.
// The runner calls it from one goroutine.
type TimeRange struct {
	cluster  kafkaconn.Cluster
	topic    string
	ranges   []offsetRange
	from, to time.Time
	done     func()

	i                    int
	cur                  *kafka.Reader
	handedOut, committed int
	exhausted            bool
	err                  error
}

// FetchMessage implements pipeline.Reader.
func (r *TimeRange) FetchMessage(ctx context.Context) (pipeline.Message, error) {
	for {
		if r.i >= len(r.ranges) {
			r.exhausted = true
			r.finishIfDone()
			<-ctx.Done()
			return pipeline.Message{}, ctx.Err()
		}
		rg := r.ranges[r.i]
		if r.cur == nil {
			r.cur = r.cluster.NewReader(kafka.ReaderConfig{
				Topic: r.topic, Partition: rg.partition,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
			})
			if err := r.cur.SetOffset(rg.start); err != nil {
				return pipeline.Message{}, r.fail(fmt.Errorf("seek %s partition %d to %d: %w", r.topic, rg.partition, rg.start, err))
			}
		}
		m, err := r.cur.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return pipeline.Message{}, err // the runner's wait ran out: not a failure
			}
			return pipeline.Message{}, r.fail(fmt.Errorf("read %s partition %d: %w", r.topic, rg.partition, err))
		}
		if m.Offset >= rg.end-1 {
			r.cur.Close()
			r.cur = nil
			r.i++
		}
		if m.Offset >= rg.end || m.Time.Before(r.from) || !m.Time.Before(r.to) {
			continue
		}
		r.handedOut++
		return FromKafka(m), nil
	}
}

// CommitMessages implements pipeline.Reader: a replay commits no offsets
// (it reads outside any consumer group); it only counts.
func (r *TimeRange) CommitMessages(_ context.Context, msgs ...pipeline.Message) error {
	r.committed += len(msgs)
	r.finishIfDone()
	return nil
}

func (r *TimeRange) finishIfDone() {
	if r.exhausted && r.committed == r.handedOut {
		r.done()
	}
}

// fail records a read error and ends the run: the runner would retry a
// failed fetch forever, and a range that cannot be read will not heal.
func (r *TimeRange) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	r.done()
	return err
}

// Close closes the partition reader in use.
func (r *TimeRange) Close() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}

// RangeOpener is the pipeline.OpenRange of topics on c.
func RangeOpener(c kafkaconn.Cluster) pipeline.OpenRange {
	return func(ctx context.Context, topic string, from, to time.Time, done func()) (pipeline.Range, error) {
		return NewTimeRange(ctx, c, topic, from, to, done)
	}
}
