// Package controllog keeps run-time control decisions (a data specification
// loaded, a key version activated) on a one-partition topic that every
// instance of a service replays at start and follows after, so that every
// instance and every restart acts on the same decisions in the same order.
//
// This package is the contract, free of any transport: a stage depends on
// Log, and its main fills it with the Kafka adapter (controllog/kafkalog).
package controllog

import (
	"context"
	"sync"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// Log is one control log.
type Log interface {
	// Publish appends an entry under key, with headers, and returns once the
	// log has it durably.
	Publish(ctx context.Context, key string, value []byte, headers ...pipeline.Header) error
	// FollowEntries calls apply for every entry on the log, oldest first,
	// then for every new one until ctx ends. caughtUp is called once, when
	// every entry that was on the log when it started has been applied (at
	// once when the log is empty), so that a caller can wait for it before
	// acting.
	FollowEntries(ctx context.Context, apply func(Entry), caughtUp func()) error
}

// Entry is one entry of the log.
type Entry struct {
	Offset int64
	Value  []byte
	// Headers carry what the log keeps about the decision besides its value
	// (who asked for it, and why), so that every instance sees it too.
	Headers []pipeline.Header
}

// Follow calls apply with the offset and value of every entry of l; see
// Log.FollowEntries.
func Follow(ctx context.Context, l Log, apply func(offset int64, doc []byte), caughtUp func()) error {
	return l.FollowEntries(ctx, func(e Entry) { apply(e.Offset, e.Value) }, caughtUp)
}

// Keep runs follow (a Follow of some log) until ctx ends, again two seconds
// after each failure, which it passes to failed; the channel it returns is
// closed once follow has caught up the first time. A service keeps a log
// this way so that a broker that drops the reader does not stop it.
func Keep(ctx context.Context, follow func(ctx context.Context, caughtUp func()) error, failed func(error)) <-chan struct{} {
	caughtUp := make(chan struct{})
	var once sync.Once
	go func() {
		for ctx.Err() == nil {
			if err := follow(ctx, func() { once.Do(func() { close(caughtUp) }) }); err != nil && ctx.Err() == nil {
				failed(err)
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		}
	}()
	return caughtUp
}

// CatchUp is Keep that returns once follow has caught up the first time
// (nil), or when ctx ends first (ctx's cause). It is how a service applies
// the decisions already on a log before it handles its first record; failed
// decides what a failure means (log it and retry, or stop the service).
func CatchUp(ctx context.Context, follow func(ctx context.Context, caughtUp func()) error, failed func(error)) error {
	select {
	case <-Keep(ctx, follow, failed):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
