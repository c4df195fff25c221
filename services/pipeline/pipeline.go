// Package pipeline is the one runner every dmic stage shares:
// consume a batch → process each message → write all outputs → commit.
//
// Offsets are committed only after the sink acknowledged every output of the
// batch, so a crash replays input rather than losing it (at-least-once); the
// stages and the ClickHouse store make a replay harmless. A message a stage
// cannot accept becomes a dead letter on the rejected topic and is committed
// like any other, so one poison message never blocks its partition. A sink
// that fails (broker or ClickHouse down) is retried with backoff and nothing is
// committed past it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/topics"
)

// Output is one message a stage produces. Topic names a Kafka topic, or for a
// non-Kafka sink (ClickHouse) a destination the sink understands; Payload
// carries an already-decoded value for such sinks.
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []kafka.Header
	Payload any
}

// Processor turns one input message into outputs. Returning a *Rejection sends
// the message to the dead-letter topic; any other error is treated the same
// way (a bug or bad data must never stop the partition) but logged as an
// unexpected failure.
type Processor interface {
	Process(ctx context.Context, m kafka.Message) ([]Output, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, m kafka.Message) ([]Output, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, m kafka.Message) ([]Output, error) {
	return f(ctx, m)
}

// Sink writes a batch of outputs and returns only once all are durable.
type Sink interface {
	Write(ctx context.Context, outs []Output) error
}

// Rejection is a message a stage refuses, with the rules it broke.
type Rejection struct {
	Failures []*dmicv1.Failure
	Header   *dmicv1.EnvelopeHeader
	RecordID string
	Provider string
	// Also are outputs written with the dead letter, in the same batch: the
	// validate stage's verdict on the record, for the provider's report.
	Also []Output
}

func (r *Rejection) Error() string {
	if len(r.Failures) == 0 {
		return "rejected"
	}
	f := r.Failures[0]
	msg := fmt.Sprintf("rejected: rule %s field %s: %s", f.GetRuleId(), f.GetField(), f.GetMessage())
	if len(r.Failures) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(r.Failures)-1)
	}
	return msg
}

// Reject builds a rejection with one failure.
func Reject(rule, field, message string) *Rejection {
	return &Rejection{Failures: []*dmicv1.Failure{{RuleId: rule, Field: field, Severity: dmicv1.Severity_SEVERITY_ERROR, Message: message}}}
}

// Config tunes a runner.
type Config struct {
	// Stage names the service in dead letters, metrics and logs.
	Stage string
	// MaxBatch is the most messages processed and committed together.
	MaxBatch int
	// BatchWait is how long to wait for a batch to fill after its first message.
	BatchWait time.Duration
	// IdleWait ends the wait early when no message arrives for this long: a
	// busy stage still fills its batches, a trickle is not held back.
	IdleWait time.Duration
	// DeadLetterTopic receives rejected messages.
	DeadLetterTopic string
}

// Reader is the part of *kafka.Reader the runner uses.
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Runner runs one stage.
type Runner struct {
	cfg     Config
	reader  Reader
	proc    Processor
	sink    Sink
	log     *slog.Logger
	metrics *Metrics

	processed atomic.Int64
	rejected  atomic.Int64

	mu      sync.Mutex
	paused  bool
	resumed chan struct{}
	// cancelFetch interrupts a fetch that is waiting for messages, so a pause
	// takes effect at once rather than after the next batch arrives.
	cancelFetch context.CancelFunc
}

// NewRunner builds a runner.
func NewRunner(cfg Config, r Reader, p Processor, s Sink, log *slog.Logger, m *Metrics) *Runner {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	if cfg.IdleWait <= 0 || cfg.IdleWait > cfg.BatchWait {
		cfg.IdleWait = min(10*time.Millisecond, cfg.BatchWait)
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = topics.Rejected
	}
	return &Runner{cfg: cfg, reader: r, proc: p, sink: s, log: log, metrics: m, resumed: make(chan struct{})}
}

// Processed counts input messages handled and committed.
func (r *Runner) Processed() int64 { return r.processed.Load() }

// Rejected counts input messages sent to the dead-letter topic.
func (r *Runner) Rejected() int64 { return r.rejected.Load() }

// Pause stops consuming after the batch in flight.
func (r *Runner) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.paused {
		r.paused = true
		r.resumed = make(chan struct{})
		if r.cancelFetch != nil {
			r.cancelFetch()
		}
		r.metrics.paused.WithLabelValues(r.cfg.Stage).Set(1)
		r.log.Info("paused")
	}
}

// Resume undoes Pause.
func (r *Runner) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused {
		r.paused = false
		close(r.resumed)
		r.metrics.paused.WithLabelValues(r.cfg.Stage).Set(0)
		r.log.Info("resumed")
	}
}

// Paused reports whether the runner is paused.
func (r *Runner) Paused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused
}

func (r *Runner) waitWhilePaused(ctx context.Context) error {
	r.mu.Lock()
	paused, ch := r.paused, r.resumed
	if paused {
		r.cancelFetch = nil
	}
	r.mu.Unlock()
	if !paused {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run consumes until ctx is cancelled. It returns nil on cancellation.
func (r *Runner) Run(ctx context.Context) error {
	for {
		if err := r.waitWhilePaused(ctx); err != nil {
			return nil
		}
		fctx, cancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.cancelFetch = cancel
		if r.paused {
			cancel() // paused between the check above and here
		}
		r.mu.Unlock()
		batch, err := r.fetchBatch(fctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if fctx.Err() != nil {
				continue // paused while waiting
			}
			r.log.Warn("fetch failed; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		if err := r.handle(ctx, batch); err != nil {
			if ctx.Err() != nil {
				// Not committed: the batch is replayed on restart.
				return nil
			}
			return err
		}
	}
}

func (r *Runner) fetchBatch(ctx context.Context) ([]kafka.Message, error) {
	first, err := r.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := make([]kafka.Message, 1, r.cfg.MaxBatch)
	batch[0] = first
	deadline := time.Now().Add(r.cfg.BatchWait)
	for len(batch) < r.cfg.MaxBatch {
		wait := min(r.cfg.IdleWait, time.Until(deadline))
		if wait <= 0 {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		m, err := r.reader.FetchMessage(wctx)
		cancel()
		if err != nil {
			break // idle, the wait ran out, or ctx ended: go with what we have
		}
		batch = append(batch, m)
	}
	return batch, nil
}

func (r *Runner) handle(ctx context.Context, batch []kafka.Message) error {
	start := time.Now()
	outs := make([]Output, 0, len(batch))
	var rejected int64
	for _, m := range batch {
		o, err := r.process(ctx, m)
		if err != nil {
			rejected++
			dl := r.deadLetter(m, err)
			outs = append(outs, dl)
			var rej *Rejection
			if errors.As(err, &rej) {
				outs = append(outs, rej.Also...)
			}
			continue
		}
		outs = append(outs, o...)
	}
	if err := r.writeWithRetry(ctx, outs); err != nil {
		return err
	}
	if err := r.commitWithRetry(ctx, batch); err != nil {
		return err
	}
	r.processed.Add(int64(len(batch)))
	r.rejected.Add(rejected)
	r.metrics.processed.WithLabelValues(r.cfg.Stage).Add(float64(len(batch)))
	r.metrics.rejected.WithLabelValues(r.cfg.Stage).Add(float64(rejected))
	r.metrics.outputs.WithLabelValues(r.cfg.Stage).Add(float64(len(outs)))
	r.metrics.batchSeconds.WithLabelValues(r.cfg.Stage).Observe(time.Since(start).Seconds())
	return nil
}

// process runs the stage on one message. A panic becomes an error, so the
// message is dead-lettered: otherwise the service would crash, restart, read
// the same message and crash again.
func (r *Runner) process(ctx context.Context, m kafka.Message) (outs []Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.metrics.panics.WithLabelValues(r.cfg.Stage).Inc()
			r.log.Error("stage panicked on a message", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			outs, err = nil, fmt.Errorf("stage panicked: %v", p)
		}
	}()
	return r.proc.Process(ctx, m)
}

func (r *Runner) deadLetter(m kafka.Message, err error) Output {
	dl := &dmicv1.DeadLetter{
		Stage:           r.cfg.Stage,
		SourceTopic:     m.Topic,
		SourcePartition: int32(m.Partition),
		SourceOffset:    m.Offset,
		Payload:         m.Value,
		RejectedTime:    timestamppb.New(m.Time),
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		dl.Failures = rej.Failures
		dl.Header = rej.Header
		dl.RecordId = rej.RecordID
		dl.ProviderCode = rej.Provider
		r.log.Debug("rejected", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "record_id", rej.RecordID, "err", rej.Error())
	} else {
		// Not a rule failure: a bug or an unexpected shape. The error text is
		// ours, never a record value, so it is safe to log and keep.
		dl.Failures = []*dmicv1.Failure{{RuleId: "STAGE-ERROR", Severity: dmicv1.Severity_SEVERITY_ERROR, Message: err.Error()}}
		r.log.Error("stage failed on a message; dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
	}
	for _, f := range dl.Failures {
		r.metrics.failures.WithLabelValues(r.cfg.Stage, f.GetRuleId()).Inc()
	}
	// The dead letter's rejected time is the input message's time, not the
	// wall clock, so that a replayed rejection is byte-identical.
	v, merr := proto.Marshal(dl)
	if merr != nil {
		v = nil
	}
	return Output{Topic: r.cfg.DeadLetterTopic, Key: m.Key, Value: v, Payload: dl}
}

func (r *Runner) writeWithRetry(ctx context.Context, outs []Output) error {
	if len(outs) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.sink.Write(ctx, outs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.metrics.sinkRetries.WithLabelValues(r.cfg.Stage).Inc()
		r.log.Warn("write failed; will retry without committing", "attempt", attempt, "backoff", backoff, "err", shorten(err))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (r *Runner) commitWithRetry(ctx context.Context, batch []kafka.Message) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.reader.CommitMessages(ctx, batch...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("commit failed; retrying", "attempt", attempt, "err", shorten(err))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// shorten keeps a log line readable: kafka-go reports one error per message
// of a failed batch, thousands of copies of the same text.
func shorten(err error) string {
	const max = 400
	s := err.Error()
	if len(s) > max {
		return s[:max] + fmt.Sprintf("… (%d more bytes)", len(s)-max)
	}
	return s
}
