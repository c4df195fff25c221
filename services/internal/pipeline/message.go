package pipeline

import (
	"fmt"
	"time"
)

// Message is one input message as a stage sees it: the runner's own type, so
// that stages, the providers' offline checker and header parsing never name
// the transport. The Kafka adapter (package kafkapipe) converts each fetched
// message once, reusing its Key, Value and header slices.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	// Time is the message's timestamp (for Kafka, set by the producer or
	// the broker): validate reads the specification version in effect by it.
	Time time.Time
	// released is the length of Value after the runner let it go
	// (released): a dead letter then still says how large it was.
	released int
}

// release is m without its value, once every output of it is a row that
// holds what it needs decoded: the value is then garbage at once, not live
// until the batch is written (a row sink's batch held every message twice:
// as read and as decoded; docs/performance.md, Memory).
func (m Message) release() Message {
	m.released = max(m.released, len(m.Value))
	m.Value = nil
	return m
}

// valueBytes is the length of m's value, released or not.
func (m Message) valueBytes() int { return max(len(m.Value), m.released) }

// Header is one message header.
type Header struct {
	Key   string
	Value []byte
}

// Position names one input message.
type Position struct {
	Topic     string
	Partition int
	Offset    int64
}

func (p Position) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// Position is where m was read.
func (m Message) Position() Position {
	return Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
}

// size is the bytes of m that a batch holds: key, value and headers.
func (m Message) size() int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
