package pipeline

import (
	"context"
	"time"
)

// The two ways a stage reads a topic other than by consuming it in its group.
// A stage names them as these function types and its main passes the Kafka
// adapter (pipeline/kafkapipe), so that the stage itself never names the
// transport (docs/architecture.md, The stage contract).

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

// ReadAll calls apply with every message on topic when it is called,
// partition by partition, oldest first, and returns how many there were: how
// a stage rebuilds state it keeps on a changelog. An error of apply stops the
// read and is returned.
type ReadAll func(ctx context.Context, topic string, apply func(Message) error) (int, error)
