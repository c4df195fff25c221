package pipeline_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
)

// toTopicNamedByValue sends value "x" to topic test.x, which may not exist.
var toTopicNamedByValue = pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	return []pipeline.Output{{Topic: "test." + string(m.Value), Key: m.Key, Value: m.Value}}, nil
})

// TestSkipFreesAStuckBatch: a record whose output cannot be written (its
// topic does not exist, which the broker says may change, so it is retried)
// holds its batch; an operator's skip of its position dead-letters it with
// the reason, the rest of the batch is written and committed, and the stage
// serves again (issue 10: "no way out short of a rebuild").
func TestSkipFreesAStuckBatch(t *testing.T) {
	kc := setup(t)
	produceValues(t, kc, []byte("out"), []byte("missing"), []byte("out"))
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r, reader := newRunner(kc, "g-skip", toTopicNamedByValue, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	defer stop()
	waitFor(t, "the batch to be stuck", func() bool { ok, _ := r.Health(); return !ok })
	if r.Processed() != 0 {
		t.Fatalf("processed %d while stuck", r.Processed())
	}
	r.Skip(pipeline.Position{Topic: in, Partition: 0, Offset: 1}, "routes to a topic that does not exist; ticket 42")
	waitFor(t, "3 processed", func() bool { return r.Processed() == 3 })
	if ok, reason := r.Health(); !ok {
		t.Errorf("after the skip: not serving (%s)", reason)
	}
	if got := readAll(t, kc, out, 2, 10*time.Second); len(got) != 2 {
		t.Errorf("%d outputs, want the 2 around the skipped record", len(got))
	}
	dl := deadLetters(t, kc, 1)[1]
	if dl == nil || dl.Failures[0].GetRuleId() != pipeline.RuleOperatorSkip || !strings.Contains(dl.Failures[0].GetMessage(), "ticket 42") {
		t.Errorf("dead letter of offset 1 = %v, want %s with the reason", dl, pipeline.RuleOperatorSkip)
	}
}

// TestReplayProcessesOneMessageAgain: a replay runs the stage on a message
// already committed and writes its outputs again, also while the stage is
// paused, without committing or counting it as new.
func TestReplayProcessesOneMessageAgain(t *testing.T) {
	kc := setup(t)
	produceValues(t, kc, []byte("2"), []byte("3"))
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	r, reader := newRunner(kc, "g-replay", evenOnly, kafkapipe.Sink{W: w})
	defer reader.Close()
	stop := run(t, r)
	defer stop()
	waitFor(t, "2 processed", func() bool { return r.Processed() == 2 })
	r.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for off, wantRejected := range []bool{false, true} {
		m := pipeline.Message{Topic: in, Partition: 0, Offset: int64(off), Key: []byte("k" + strconv.Itoa(off)), Value: []byte(strconv.Itoa(off + 2))}
		res, err := r.Replay(ctx, m)
		if err != nil || res.Rejected != wantRejected || res.Outputs != 1 {
			t.Errorf("replay of offset %d: %+v, %v; want rejected %v, 1 output", off, res, err, wantRejected)
		}
	}
	if got := readAll(t, kc, out, 2, 10*time.Second); len(got) != 2 {
		t.Errorf("%d outputs of \"2\", want 2 (processed, then replayed)", len(got))
	}
	deadLetters(t, kc, 1) // the same dead letter twice: one position
	if r.Processed() != 2 {
		t.Errorf("processed %d after replays, want still 2", r.Processed())
	}
}
