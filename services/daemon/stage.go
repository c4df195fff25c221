package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/control"
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/topics"
)

// Stage describes a consumer stage for RunStage.
type Stage struct {
	Group     string
	Inputs    []string
	Outputs   []string
	MaxBatch  int
	BatchWait time.Duration
	Processor pipeline.Processor
	// Sink defaults to Kafka.
	Sink pipeline.Sink
}

// WaitForTopics creates dmic's topics, retrying while the broker is not yet up
// (services may start before the broker does).
func (d *Daemon) WaitForTopics(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := topics.Ensure(ctx, d.Config.BrokerList(), d.Config.Partitions)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %s not reachable: %w", d.Config.Brokers, err)
		}
		d.Log.Info("waiting for the broker", "brokers", d.Config.Brokers, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// RunStage runs a consume → process → produce → commit stage until ctx ends.
func (d *Daemon) RunStage(ctx context.Context, s Stage) error {
	if err := d.WaitForTopics(ctx); err != nil {
		return err
	}
	brokers := d.Config.BrokerList()
	reader := pipeline.NewReader(brokers, s.Group, s.Inputs...)
	defer reader.Close()
	sink := s.Sink
	if sink == nil {
		w := d.NewWriter()
		defer w.Close()
		sink = pipeline.KafkaSink{W: w}
	}
	if d.Config.MaxBatch > 0 {
		s.MaxBatch = d.Config.MaxBatch
	}
	if d.Config.BatchWait > 0 {
		s.BatchWait = d.Config.BatchWait
	}
	metrics := pipeline.NewMetrics(d.Registry)
	runner := pipeline.NewRunner(pipeline.Config{Stage: d.Name, MaxBatch: s.MaxBatch, BatchWait: s.BatchWait},
		reader, s.Processor, sink, d.Log, metrics)
	lag := func(ctx context.Context) (int64, error) {
		return topics.GroupLag(ctx, brokers, s.Group, s.Inputs...)
	}
	info := control.Info{ConsumerGroup: s.Group, InputTopics: s.Inputs, OutputTopics: s.Outputs}
	return d.Serve(ctx, info, runner, lag, runner.Run)
}

// NewWriter returns a Kafka writer with the configured compression.
func (d *Daemon) NewWriter() *kafka.Writer {
	c, _ := pipeline.ParseCompression(d.Config.Compression) // checked by Validate
	return pipeline.NewWriter(d.Config.BrokerList(), pipeline.WithCompression(c))
}
