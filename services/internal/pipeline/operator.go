package pipeline

import (
	"context"
	"errors"
)

// Skip makes the runner dead-letter the message at p (rule OPERATOR-SKIP,
// with reason) instead of processing it: when it is read, or at once if it
// is in the batch the runner is retrying, which is how an operator frees a
// partition that one record holds. A skip is kept until the process ends;
// the operator log (dmic.operator-audit) brings it back after a restart.
func (r *Runner) Skip(p Position, reason string) {
	r.skipMu.Lock()
	defer r.skipMu.Unlock()
	if r.skips == nil {
		r.skips = map[Position]string{}
	}
	r.skips[p] = reason
}

// skipped is the reason m is to be skipped, if it is.
func (r *Runner) skipped(m Message) (string, bool) {
	r.skipMu.Lock()
	defer r.skipMu.Unlock()
	reason, ok := r.skips[m.Position()]
	return reason, ok
}

// applySkips replaces the outputs of skipped units by their dead letters,
// and reports whether any changed.
func (r *Runner) applySkips(units []unit) bool {
	changed := false
	for i := range units {
		if reason, ok := r.skipped(units[i].msg); ok && !units[i].skippedOut {
			units[i] = r.skipUnit(units[i].msg, reason)
			changed = true
		}
	}
	return changed
}

func (r *Runner) skipUnit(m Message, reason string) unit {
	u := r.deadLetterUnit(m, RuleOperatorSkip, "skipped by an operator: "+reason)
	u.skippedOut = true
	return u
}

// ErrStopped is returned by Replay when the runner is not running.
var ErrStopped = errors.New("the stage is not running")

// ReplayResult is what a replay wrote.
type ReplayResult struct {
	Rejected bool
	Outputs  int
}

type replayOp struct {
	msg  Message
	done chan replayDone
}

type replayDone struct {
	res ReplayResult
	err error
}

// Replay processes m again and writes its outputs, without committing
// anything (it was committed when first processed). It runs in the runner's
// goroutine, between batches (a stage is not safe for concurrent use), also
// while the runner is paused; it waits while a batch is being retried.
func (r *Runner) Replay(ctx context.Context, m Message) (ReplayResult, error) {
	op := replayOp{msg: m, done: make(chan replayDone, 1)}
	select {
	case r.ops <- op:
	case <-ctx.Done():
		return ReplayResult{}, ctx.Err()
	case <-r.stopped:
		return ReplayResult{}, ErrStopped
	}
	r.mu.Lock()
	if r.cancelFetch != nil {
		r.cancelFetch() // a fetch waiting for messages: serve the replay now
	}
	r.mu.Unlock()
	select {
	case d := <-op.done:
		return d.res, d.err
	case <-ctx.Done():
		return ReplayResult{}, ctx.Err()
	}
}

// serveOps runs the replays that are waiting.
func (r *Runner) serveOps(ctx context.Context) {
	for {
		select {
		case op := <-r.ops:
			op.done <- r.replay(ctx, op.msg)
		default:
			return
		}
	}
}

func (r *Runner) replay(ctx context.Context, m Message) replayDone {
	// A replay is a batch of one to the stage, so that a stage with state
	// (BatchStarter, BatchEnder) sees it as it sees any other.
	if err := r.beginBatch(ctx, []Message{m}); err != nil {
		return replayDone{err: err}
	}
	u := r.processUnit(ctx, m)
	units := []unit{u}
	if err := r.writeUnits(ctx, units); err != nil {
		return replayDone{err: err}
	}
	if err := r.endBatch(ctx, units); err != nil {
		return replayDone{err: err}
	}
	r.log.Warn("replayed a message by operator request", "position", m.Position().String(), "rejected", units[0].rejected, "outputs", len(units[0].outs))
	return replayDone{res: ReplayResult{Rejected: units[0].rejected, Outputs: len(units[0].outs)}}
}
