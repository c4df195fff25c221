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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Output is one thing a stage produces for the sink: a Kafka message (Topic,
// Key, Value, Headers), or a row for a sink that is not Kafka (load's
// ClickHouse rows), made by RowOutput and read back by SplitRows with the
// type the stage and its sink agree on. The runner passes a row through
// untouched; its size limit and dead letters are for Kafka messages.
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
	// row is unexported so that a row is only ever made and read with a type
	// parameter (RowOutput, SplitRows), never cast by hand from an any.
	row any
	// partition is the partition the message must go to (ToPartition),
	// where pinned; otherwise the sink chooses by key.
	partition int
	pinned    bool
}

// IsRow reports whether o is a row for a non-Kafka sink.
func (o Output) IsRow() bool { return o.row != nil }

// ToPartition is o sent to partition p of its topic whatever its key: a
// changelog kept partition by partition beside the input partition it
// belongs to (reconcile's), which must not depend on two topics hashing a
// key alike.
func (o Output) ToPartition(p int) Output {
	o.partition, o.pinned = p, true
	return o
}

// Partition is the partition o must go to, if ToPartition named one.
func (o Output) Partition() (int, bool) { return o.partition, o.pinned }

// RowOutput is an output that carries row to a sink that takes rows of type R.
func RowOutput[R any](row R) Output { return Output{row: row} }

// SplitRows is the sink's side of RowOutput: the rows of outs, each of type
// R, and the Kafka messages among them (the runner's dead letters). A row of
// another type is a bug that retrying cannot cure: the error is Permanent,
// so the runner dead-letters the message that produced it.
func SplitRows[R any](outs []Output) (rows []R, messages []Output, err error) {
	rows = make([]R, 0, len(outs)) // one slice per batch: a row sink's outputs are nearly all rows
	for _, o := range outs {
		if o.row == nil {
			messages = append(messages, o)
			continue
		}
		r, ok := o.row.(R)
		if !ok {
			var want R
			return nil, nil, Permanent(fmt.Errorf("a row of type %T where the sink takes %T", o.row, &want))
		}
		rows = append(rows, r)
	}
	return rows, messages, nil
}

// Processor turns one input message into outputs. Returning a *Rejection sends
// the message to the dead-letter topic; any other error is treated the same
// way (a bug or bad data must never stop the partition) but logged as an
// unexpected failure.
type Processor interface {
	Process(ctx context.Context, m Message) ([]Output, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, m Message) ([]Output, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, m Message) ([]Output, error) {
	return f(ctx, m)
}

// Sink writes a batch of outputs and returns only once all are durable.
type Sink interface {
	Write(ctx context.Context, outs []Output) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, outs []Output) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, outs []Output) error { return f(ctx, outs) }

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
	// MaxBatchBytes ends a batch early once its messages (keys, values and
	// headers) hold this many bytes: what a batch keeps live grows with its
	// bytes, not its count, and the service's memory limit bounds the
	// first (docs/performance.md, Memory). 0: no bound but MaxBatch.
	MaxBatchBytes int
	// BatchWait is how long to wait for a batch to fill after its first message.
	BatchWait time.Duration
	// IdleWait ends the wait early when no message arrives for this long: a
	// busy stage still fills its batches, a trickle is not held back.
	IdleWait time.Duration
	// DeadLetterTopic receives rejected messages.
	DeadLetterTopic string
	// UnhealthyAfter and UnhealthyAttempts say when a stage that cannot
	// write or commit a batch reports itself not serving: after failing for
	// this long, or this many attempts at the same batch, whichever comes
	// first (defaults 30 s and 5). It keeps retrying either way.
	UnhealthyAfter    time.Duration
	UnhealthyAttempts int
}

// Reader is where the runner reads its input: the Kafka adapter
// (kafkapipe.Reader) in a service, a range of a topic in a replay. Commit
// marks every message of a batch done (for Kafka: the group's offsets).
type Reader interface {
	FetchMessage(ctx context.Context) (Message, error)
	CommitMessages(ctx context.Context, msgs ...Message) error
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
	// lastProgress is when a batch was last committed (Unix nanoseconds; 0:
	// never), for status and the last-progress metric.
	lastProgress atomic.Int64

	// trouble is the failure the runner is retrying, if any (health).
	troubleMu sync.Mutex
	trouble   trouble

	// Operators' requests: messages to skip, replays to run.
	skipMu  sync.Mutex
	skips   map[Position]string
	ops     chan replayOp
	stopped chan struct{}

	mu      sync.Mutex
	paused  bool
	resumed chan struct{}
	// cancelFetch interrupts a fetch that is waiting for messages, so a pause
	// takes effect at once rather than after the next batch arrives.
	cancelFetch context.CancelFunc

	// batchBuf and unitBuf are the slices of a batch and its units, kept
	// from one batch to the next (Run's goroutine alone uses them) and
	// cleared after each: made anew per batch they were an eighth of load's
	// allocation, and under the memory limit allocation is what makes the
	// collector run.
	batchBuf []Message
	unitBuf  []unit
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
	if cfg.UnhealthyAfter <= 0 {
		cfg.UnhealthyAfter = 30 * time.Second
	}
	if cfg.UnhealthyAttempts <= 0 {
		cfg.UnhealthyAttempts = 5
	}
	m.healthy.WithLabelValues(cfg.Stage).Set(1)
	return &Runner{cfg: cfg, reader: r, proc: p, sink: s, log: log, metrics: m, resumed: make(chan struct{}),
		ops: make(chan replayOp, 16), stopped: make(chan struct{})}
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
	for {
		select {
		case <-ch:
			return nil
		case op := <-r.ops:
			op.done <- r.replay(ctx, op.msg)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run consumes until ctx is cancelled. It returns nil on cancellation.
func (r *Runner) Run(ctx context.Context) error {
	defer close(r.stopped)
	for {
		if err := r.waitWhilePaused(ctx); err != nil {
			return nil
		}
		r.serveOps(ctx)
		fctx, cancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.cancelFetch = cancel
		if r.paused || len(r.ops) > 0 {
			cancel() // paused, or a replay asked for, since the checks above
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
		err = r.handle(ctx, batch)
		// Nothing of the batch is held past it: its messages are garbage.
		clear(batch)
		r.batchBuf = batch[:0]
		if err != nil {
			if ctx.Err() != nil {
				// Not committed: the batch is replayed on restart.
				return nil
			}
			return err
		}
	}
}

// fetchBatch gathers the next batch: the first message, then whatever comes
// before the batch is full, BatchWait has passed since the first, or no
// message has come for IdleWait.
//
// It costs next to nothing per message, because it runs for every message
// of every stage: the slice is the runner's own (batchBuf), reused from batch to batch
// (a new one of MaxBatch messages, 1.3 MB zeroed for 10,000, was made for
// each batch however few it held), and one timer, pushed back after each
// message, cancels the wait (a context.WithTimeout per message cost five
// allocations and about a microsecond; BenchmarkFetchBatch).
func (r *Runner) fetchBatch(ctx context.Context) ([]Message, error) {
	first, err := r.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	// Grown as needed (and kept: batchBuf), not made at MaxBatch: a batch
	// that ends at its bytes or its wait is often far smaller, and load's
	// MaxBatch of 50,000 would hold 6 MB of empty messages.
	batch := append(r.batchBuf[:0], first)
	size := first.size()
	deadline := time.Now().Add(r.cfg.BatchWait)
	wait := func() time.Duration { return min(r.cfg.IdleWait, time.Until(deadline)) }
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(wait(), cancel)
	defer idle.Stop()
	for len(batch) < r.cfg.MaxBatch && (r.cfg.MaxBatchBytes == 0 || size < r.cfg.MaxBatchBytes) {
		m, err := r.reader.FetchMessage(wctx)
		if err != nil {
			break // idle, the wait ran out, or ctx ended: go with what we have
		}
		batch = append(batch, m)
		size += m.size()
		w := wait()
		if w <= 0 || !idle.Stop() {
			break // the batch's time is up, or the timer fired (wctx is done)
		}
		idle.Reset(w)
	}
	return batch, nil
}

// unit is one input message and what it produced: its outputs, or its dead
// letter (with any outputs written beside it).
type unit struct {
	msg      Message
	outs     []Output
	rejected bool
	// skippedOut: replaced by its dead letter at an operator's request.
	skippedOut bool
}

func (r *Runner) handle(ctx context.Context, batch []Message) error {
	start := time.Now()
	if err := r.beginBatch(ctx, batch); err != nil {
		return err
	}
	units := slices.Grow(r.unitBuf[:0], len(batch))[:len(batch)]
	defer func() {
		clear(units)
		r.unitBuf = units[:0]
	}()
	for i, m := range batch {
		units[i] = r.processUnit(ctx, m)
		if units[i].rowsOnly() {
			batch[i] = m.release()
			units[i].msg = batch[i]
		}
	}
	if err := r.writeUnits(ctx, units); err != nil {
		return err
	}
	if err := r.endBatch(ctx, units); err != nil {
		return err
	}
	if err := r.commitWithRetry(ctx, batch); err != nil {
		return err
	}
	var rejected, outputs int64
	for _, u := range units {
		if u.rejected {
			rejected++
		}
		outputs += int64(len(u.outs))
	}
	r.processed.Add(int64(len(batch)))
	r.rejected.Add(rejected)
	now := time.Now()
	r.lastProgress.Store(now.UnixNano())
	r.metrics.lastProgress.WithLabelValues(r.cfg.Stage).Set(float64(now.UnixNano()) / 1e9)
	r.metrics.processed.WithLabelValues(r.cfg.Stage).Add(float64(len(batch)))
	r.metrics.rejected.WithLabelValues(r.cfg.Stage).Add(float64(rejected))
	r.metrics.outputs.WithLabelValues(r.cfg.Stage).Add(float64(outputs))
	r.metrics.batchSeconds.WithLabelValues(r.cfg.Stage).Observe(time.Since(start).Seconds())
	return nil
}

// rowsOnly reports whether every output of u is a row (a row sink's: load's
// decoded records), so that its input message's value is no longer needed.
func (u unit) rowsOnly() bool {
	if u.rejected || len(u.outs) == 0 {
		return false
	}
	for _, o := range u.outs {
		if !o.IsRow() {
			return false
		}
	}
	return true
}

// processUnit runs the stage on m. A message the stage refuses, or whose
// outputs could never be written (one above limits.MaxMessageBytes), becomes
// a dead letter: an error that retrying cannot cure must never hold the
// partition.
func (r *Runner) processUnit(ctx context.Context, m Message) unit {
	if reason, ok := r.skipped(m); ok {
		return r.skipUnit(m, reason)
	}
	outs, err := r.process(ctx, m)
	if err == nil {
		err = checkSizes(outs)
	}
	if err != nil {
		return r.rejectUnit(m, err)
	}
	return unit{msg: m, outs: outs}
}

// deadLetterUnit is m's dead letter alone, for a rule of the runner's own.
func (r *Runner) deadLetterUnit(m Message, rule, msg string) unit {
	return unit{msg: m, rejected: true, outs: []Output{r.deadLetter(m, Reject(rule, "", msg))}}
}

// rejectUnit is m's dead letter, with the outputs a Rejection asks for.
func (r *Runner) rejectUnit(m Message, err error) unit {
	u := unit{msg: m, rejected: true, outs: []Output{r.deadLetter(m, err)}}
	var rej *Rejection
	if errors.As(err, &rej) {
		for _, o := range rej.Also {
			if checkSizes([]Output{o}) == nil {
				u.outs = append(u.outs, o)
			}
		}
	}
	return u
}

// checkSizes refuses outputs that no broker would take: a Kafka message
// above limits.MaxMessageBytes. Rows (IsRow) are the row sink's business.
func checkSizes(outs []Output) error {
	for _, o := range outs {
		if o.IsRow() {
			continue
		}
		if n := MessageSize(o); n > limits.MaxMessageBytes {
			return Reject(RuleMessageTooLarge, "",
				fmt.Sprintf("the message for %s derived from this one would be %d bytes, above the %d-byte limit (docs/operations.md, Limits)",
					o.Topic, n, limits.MaxMessageBytes))
		}
	}
	return nil
}

// MessageSize is o's size as kafka-go measures it against BatchBytes: key,
// value and headers with their framing.
func MessageSize(o Output) int {
	n := FramedSize(len(o.Key), len(o.Value))
	for _, h := range o.Headers {
		n += HeaderSize(len(h.Key), len(h.Value))
	}
	return n
}

// FramedSize is a message's size without headers, as kafka-go measures it:
// its key and value with their framing (MessageSize adds the headers).
func FramedSize(key, value int) int { return 4 + 1 + 1 + 4 + key + 4 + value + 8 }

// HeaderSize is the size of one header with its framing (MessageSize).
func HeaderSize(key, value int) int { return 5 + key + 5 + value }

// Rules of the dead letters the runner itself writes.
const (
	// RuleMessageTooLarge: an output would exceed limits.MaxMessageBytes.
	RuleMessageTooLarge = "MSG-TOO-LARGE"
	// RuleWriteRefused: the sink refused the message's outputs with an
	// error that retrying cannot cure (see IsPermanent).
	RuleWriteRefused = "SINK-REFUSED"
	// RuleStageError: the stage failed on the message (a bug, or a shape no
	// rule names); RuleOperatorSkip: an operator skipped it.
	RuleStageError   = "STAGE-ERROR"
	RuleOperatorSkip = "OPERATOR-SKIP"
)

// process runs the stage on one message. A panic becomes an error, so the
// message is dead-lettered: otherwise the service would crash, restart, read
// the same message and crash again.
func (r *Runner) process(ctx context.Context, m Message) (outs []Output, err error) {
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

// deadLetter is m's dead letter: the failures, where m was read, and at most
// limits.DeadLetterExcerptBytes of it, so that a dead letter always fits
// where the message itself might not. A message the runner released (a row
// sink's, refused by the sink after it was decoded) has no excerpt: its dead
// letter names where it is and how large it was.
func (r *Runner) deadLetter(m Message, err error) Output {
	excerpt, cut := limits.Excerpt(m.Value)
	dl := &dmicv1.DeadLetter{
		Stage:            r.cfg.Stage,
		SourceTopic:      m.Topic,
		SourcePartition:  int32(m.Partition),
		SourceOffset:     m.Offset,
		Payload:          excerpt,
		PayloadBytes:     int64(m.valueBytes()),
		PayloadTruncated: cut || m.released > 0,
		RejectedTime:     timestamppb.New(m.Time),
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		dl.Failures = rej.Failures
		dl.Header = rej.Header
		dl.RecordId = rej.RecordID
		dl.ProviderCode = rej.Provider
		level := slog.LevelDebug
		if len(rej.Failures) > 0 && r.ownRule(rej.Failures[0].GetRuleId()) {
			level = slog.LevelWarn // the runner's own: a limit, a refusal, an operator
		}
		r.log.Log(context.Background(), level, "rejected", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
			"record_id", rej.RecordID, "err", rej.Error())
	} else {
		// Not a rule failure: a bug or an unexpected shape. The error text is
		// ours, never a record value, so it is safe to log and keep.
		dl.Failures = []*dmicv1.Failure{{RuleId: RuleStageError, Severity: dmicv1.Severity_SEVERITY_ERROR, Message: err.Error()}}
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
	return Output{Topic: r.cfg.DeadLetterTopic, Key: m.Key, Value: v}
}

func (r *Runner) ownRule(id string) bool {
	switch id {
	case RuleMessageTooLarge, RuleWriteRefused, RuleOperatorSkip:
		return true
	}
	return false
}

func flatten(units []unit) []Output {
	n := 0
	for _, u := range units {
		n += len(u.outs)
	}
	outs := make([]Output, 0, n)
	for _, u := range units {
		outs = append(outs, u.outs...)
	}
	return outs
}

// writeUnits writes every unit's outputs, retrying while the sink is
// unavailable. When the sink refuses the batch with an error that retrying
// cannot cure, it writes the units one at a time to find the ones it
// refuses, and dead-letters those.
func (r *Runner) writeUnits(ctx context.Context, units []unit) error {
	outs := flatten(units)
	if len(outs) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if attempt > 1 && r.applySkips(units) {
			outs = flatten(units) // an operator skipped a message of this batch
		}
		err := r.sink.Write(ctx, outs)
		if err == nil {
			r.clearTrouble()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if IsPermanent(err) {
			r.log.Warn("write refused for good; finding the messages it refuses", "messages", len(outs), "inputs", len(units), "err", shorten(err))
			return r.writeEach(ctx, units)
		}
		r.noteTrouble("write", units, attempt, err)
		r.metrics.sinkRetries.WithLabelValues(r.cfg.Stage).Inc()
		r.log.Warn("write failed; will retry without committing", "attempt", attempt, "backoff", backoff, "err", shorten(err))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// writeEach writes one unit at a time; a unit the sink refuses for good is
// replaced by its dead letter.
func (r *Runner) writeEach(ctx context.Context, units []unit) error {
	for i := range units {
		u := &units[i]
		backoff := 100 * time.Millisecond
		for attempt := 1; len(u.outs) > 0; attempt++ {
			if attempt > 1 {
				r.applySkips(units[i : i+1])
			}
			err := r.sink.Write(ctx, u.outs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if IsPermanent(err) && !(u.rejected && len(u.outs) == 1) {
				*u = r.deadLetterUnit(u.msg, RuleWriteRefused, "the sink refused this message's outputs: "+shorten(err))
				continue
			}
			// A bare dead letter is bounded: if it is refused, the sink is
			// misconfigured, which an operator must fix; keep trying.
			r.noteTrouble("write", units[i:i+1], attempt, err)
			r.metrics.sinkRetries.WithLabelValues(r.cfg.Stage).Inc()
			r.log.Warn("write failed; will retry without committing", "attempt", attempt, "backoff", backoff, "err", shorten(err))
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}
	r.clearTrouble()
	return nil
}

// beginBatch tells a BatchStarter stage of the batch, retrying with
// backoff until it is ready: nothing of the batch is processed before.
func (r *Runner) beginBatch(ctx context.Context, batch []Message) error {
	bs, ok := r.proc.(BatchStarter)
	if !ok || len(batch) == 0 {
		return nil
	}
	return r.retry(ctx, "prepare", []unit{{msg: batch[0]}}, func() error { return bs.BeginBatch(ctx, batch) })
}

// endBatch tells a BatchEnder stage what was written, retrying with backoff:
// the offsets are committed only after it succeeded.
func (r *Runner) endBatch(ctx context.Context, units []unit) error {
	be, ok := r.proc.(BatchEnder)
	if !ok || len(units) == 0 {
		return nil
	}
	written := flatten(units)
	return r.retry(ctx, "finish", units[:1], func() error { return be.EndBatch(ctx, written) })
}

// retry calls try until it succeeds or ctx ends, noting the trouble for
// health while it fails.
func (r *Runner) retry(ctx context.Context, op string, units []unit, try func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil {
			r.clearTrouble()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.noteTrouble(op, units, attempt, err)
		r.log.Warn("stage could not "+op+" a batch; retrying", "attempt", attempt, "backoff", backoff, "err", shorten(err))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (r *Runner) commitWithRetry(ctx context.Context, batch []Message) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.reader.CommitMessages(ctx, batch...)
		if err == nil {
			r.clearTrouble()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.noteTrouble("commit", nil, attempt, err)
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
