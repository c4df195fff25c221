package pipeline

import (
	"context"
	"time"
)

// The ways a stage reads a topic other than by consuming it in its group (a
// range of time, a changelog partition by partition), and the hooks a stage
// with state takes around each batch. A stage names the readers as these
// types and its main passes the Kafka adapter (pipeline/kafkapipe), so that
// the stage itself never names the transport (docs/architecture.md, The
// stage contract).

// Range is a bounded reader: the messages of one topic in a period, for a
// runner that re-processes it.
type Range interface {
	Reader
	// Empty reports whether no message is in the range.
	Empty() bool
	// Err is the read error that ended the range early, if any.
	Err() error
	Close()
}

// OpenRange opens the messages of topic whose time is in [from, to). Once
// every message handed out is committed and none is left, the range calls
// done, which should end the run; a read error also calls done.
type OpenRange func(ctx context.Context, topic string, from, to time.Time, done func()) (Range, error)

// PartitionLog reads a topic partition by partition, by offset: how a stage
// keeps state on a changelog whose partition p holds the state of its input
// partition p (reconcile's), and restores only the partitions it consumes.
// Its Kafka adapter is kafkapipe.PartitionLog.
type PartitionLog interface {
	// Describe is what identifies the log: the cluster it is on and the
	// topic's partition count.
	Describe(ctx context.Context, topic string) (LogInfo, error)
	// StartOffsets and EndOffsets are, per partition asked for, the offset
	// of the first message kept and the offset the next message will get
	// (the high watermark), each in one request.
	StartOffsets(ctx context.Context, topic string, partitions []int) (map[int]int64, error)
	EndOffsets(ctx context.Context, topic string, partitions []int) (map[int]int64, error)
	// Read calls apply with every message of the partition whose offset is
	// in [from, to), oldest first, and returns how many there were. A
	// compacted log has gaps; Read ends at to, not at a count. An error of
	// apply stops the read and is returned.
	Read(ctx context.Context, topic string, partition int, from, to int64, apply func(Message) error) (int, error)
}

// LogInfo identifies a log: a changelog read on another cluster, or with
// another partition count, is another log.
type LogInfo struct {
	// Cluster is the cluster's id (Kafka's cluster id).
	Cluster    string
	Partitions int
}

// BatchStarter is a Processor that prepares for each batch: the runner calls
// BeginBatch with the batch before it processes any message of it (and
// before an operator's replay, with that one message). An error stops the
// batch before anything of it is processed: the runner retries it with
// backoff, and health reports the failure as it does a failing write.
// Reconcile brings its state of each partition in the batch up to date with
// its changelog here.
//
// batch is the runner's, reused for the next batch: a stage must not keep it
// (or a slice of it) past BeginBatch; the messages themselves it may keep.
type BatchStarter interface {
	BeginBatch(ctx context.Context, batch []Message) error
}

// BatchEnder is a Processor told what of a batch was written: the runner
// calls EndBatch once the sink has acknowledged the batch's outputs, before
// it commits the input offsets, with exactly the outputs that were written
// (dead letters in place of outputs the sink refused or an operator
// skipped). An error is retried with backoff before the commit, and health
// reports it. Reconcile keeps in its store what reached its changelog here,
// and nothing else.
type BatchEnder interface {
	EndBatch(ctx context.Context, written []Output) error
}
