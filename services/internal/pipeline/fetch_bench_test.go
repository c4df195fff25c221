package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queueReader hands out queued messages the way kafka-go's consumer-group
// reader does: a select on its queue and the caller's context.
type queueReader struct{ q chan Message }

func (r queueReader) FetchMessage(ctx context.Context) (Message, error) {
	select {
	case m := <-r.q:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

func (queueReader) CommitMessages(context.Context, ...Message) error { return nil }

// BenchmarkFetchBatch: the runner's cost per message of gathering a batch
// from a reader whose messages are already fetched (a busy stage), without
// the stage's work.
func BenchmarkFetchBatch(b *testing.B) {
	const batch = 10000
	r := queueReader{q: make(chan Message, batch)}
	run := NewRunner(Config{Stage: "bench", MaxBatch: batch, BatchWait: time.Minute, IdleWait: time.Minute}, r, nil, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for range batch {
			r.q <- Message{Value: []byte("x")}
		}
		b.StartTimer()
		got, err := run.fetchBatch(context.Background())
		if err != nil || len(got) != batch {
			b.Fatalf("%d messages, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/message")
}
