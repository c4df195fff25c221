package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// hooked is evenOnly with batch hooks that record what the runner tells
// them, and fail the first calls.
type hooked struct {
	mu                       sync.Mutex
	batch                    map[pipeline.Position]bool // the batch begun and not yet ended
	beginFailures, endFailed int
	begun, ended             int
	outside                  []string // messages processed outside their batch
	written                  map[string]int
}

func (h *hooked) BeginBatch(_ context.Context, batch []pipeline.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.beginFailures > 0 {
		h.beginFailures--
		return errors.New("changelog not reachable")
	}
	h.begun++
	h.batch = map[pipeline.Position]bool{}
	for _, m := range batch {
		h.batch[m.Position()] = true
	}
	return nil
}

func (h *hooked) Process(ctx context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	h.mu.Lock()
	if !h.batch[m.Position()] {
		h.outside = append(h.outside, m.Position().String())
	}
	h.mu.Unlock()
	return evenOnly(ctx, m)
}

func (h *hooked) EndBatch(_ context.Context, written []pipeline.Output) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.endFailed == 0 {
		h.endFailed++
		return errors.New("disk full")
	}
	h.ended++
	h.batch = nil
	for _, o := range written {
		h.written[o.Topic]++
	}
	return nil
}

// The runner prepares each batch before processing any message of it,
// retrying a failure, and tells the stage what was written (dead letters
// included) before it commits, retrying that too.
func TestRunnerCallsTheBatchHooks(t *testing.T) {
	kc := setup(t)
	produce(t, kc, 100)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	h := &hooked{beginFailures: 2, written: map[string]int{}}
	r, reader := newRunner(kc, "hooks", h, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	waitFor(t, "100 processed", func() bool { return r.Processed() == 100 })
	stop()

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.outside) > 0 {
		t.Errorf("messages processed outside a begun batch: %v", h.outside)
	}
	if h.begun == 0 || h.ended != h.begun {
		t.Errorf("batches begun %d, ended %d: want every begun batch ended", h.begun, h.ended)
	}
	if h.written[out] != 50 || h.written[topics.Rejected] != 50 {
		t.Errorf("EndBatch saw %v, want 50 outputs and 50 dead letters", h.written)
	}
}

// A replay by an operator is a batch of one to the stage.
func TestReplayIsABatchOfOne(t *testing.T) {
	kc := setup(t)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	h := &hooked{endFailed: 1, written: map[string]int{}}
	r, reader := newRunner(kc, "hooks-replay", h, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	defer stop()
	m := pipeline.Message{Topic: in, Partition: 1, Offset: 7, Value: []byte("4")}
	res, err := r.Replay(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if res.Outputs != 1 || h.begun != 1 || h.ended != 1 || len(h.outside) > 0 || h.written[out] != 1 {
		t.Errorf("replay: %+v, begun %d ended %d outside %v written %v", res, h.begun, h.ended, h.outside, h.written)
	}
}
