package deidentify

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Replayer re-runs a time range of the validated topic through the
// de-identify stage: how a period gets the pseudonyms of newly active keys.
//
// It replays dmic.validated, the stage's own input (kept as long as the raw
// topic), not dmic.raw: replaying raw would validate again and count every
// rejection and data-quality outcome twice. The replayed records keep their
// header, hence their version, so downstream they replace the rows of the
// first pass (ClickHouse keeps the last inserted row of equal version).
type Replayer struct {
	open pipeline.OpenRange
	sink pipeline.Sink
	ref  *refdata.Reference
	lg   *slog.Logger
}

// NewReplayer reads the period with open and writes the stage's outputs (and
// dead letters) to sink.
func NewReplayer(open pipeline.OpenRange, sink pipeline.Sink, ref *refdata.Reference, lg *slog.Logger) *Replayer {
	return &Replayer{open: open, sink: sink, ref: ref, lg: lg}
}

// ReplayResult counts a replay.
type ReplayResult struct {
	// Records read from the validated topic in the range (including Rejected).
	Records int64
	// Rejected is how many of them were dead-lettered.
	Rejected int64
}

// Replay de-identifies with keys every validated record whose message time is
// in [from, to) and writes the outputs, through the shared pipeline runner
// (same dead letters, same retries). It returns when every output is
// acknowledged, or with the counts so far and an error.
func (r *Replayer) Replay(ctx context.Context, keys didi.KeySource, from, to time.Time) (ReplayResult, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	rr, err := r.open(ctx, topics.Validated, from, to, stop)
	if err != nil {
		return ReplayResult{}, err
	}
	defer rr.Close()
	if rr.Empty() {
		return ReplayResult{}, nil
	}
	// A registry of its own: the stage's runner has the service's metrics.
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	runner := pipeline.NewRunner(pipeline.Config{Stage: "deidentify", MaxBatch: 1000, BatchWait: 50 * time.Millisecond},
		rr, New(didi.NewDeidentifier(keys, r.ref)), r.sink, r.lg.With("replay", true), metrics)
	err = runner.Run(runCtx)
	res := ReplayResult{Records: runner.Processed(), Rejected: runner.Rejected()}
	switch {
	case err != nil:
		return res, err
	case rr.Err() != nil:
		return res, rr.Err()
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	return res, nil
}
