package service

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

// Stage describes a consumer stage for RunStage.
type Stage struct {
	// Access is the service's use of Kafka (the ACL table's row for its
	// principal): the stage consumes its Inputs in its Group.
	Access topics.Access
	// Outputs are what status shows as the stage's outputs (default
	// Access.Outputs).
	Outputs  []string
	MaxBatch int
	// MaxBatchBytes ends a batch once its messages hold this many bytes
	// (pipeline.Config; 0: DefaultMaxBatchBytes).
	MaxBatchBytes int
	BatchWait     time.Duration
	Processor     pipeline.Processor
	// Sink defaults to Kafka. A stage whose sink depends on something that
	// may be down at start (ClickHouse) gives OpenSink instead: RunStage
	// serves health and control at once, reports NOT_SERVING (naming
	// SinkName) while OpenSink fails, and retries it with backoff until it
	// succeeds, rather than exiting into a restart loop.
	Sink     pipeline.Sink
	OpenSink func(ctx context.Context) (sink pipeline.Sink, close func(), err error)
	SinkName string
	// Probe, when set, is called every ProbeEvery (default 5 s) once the sink
	// is open: while it fails the service is NOT_SERVING (naming SinkName),
	// so an outage shows in health even when no record is flowing.
	Probe      func(ctx context.Context) error
	ProbeEvery time.Duration
}

// WaitForTopics waits until the topics the service uses exist (creating
// them where its principal may: a broker without ACLs), retrying with
// backoff while the broker is not reachable, refuses the principal, or lacks
// a topic (services may start before the broker, or before the
// administrator's setup), for as long as it takes: a service that exits
// instead is restarted into the same wait by its supervisor.
func (d *Daemon) WaitForTopics(ctx context.Context, access topics.Access) error {
	return d.WaitFor(ctx, "broker", func(ctx context.Context) error {
		return kafkatopics.Require(ctx, d.Kafka, d.Config.Partitions, access.Topics()...)
	})
}

// WaitFor calls try until it succeeds or ctx ends, with backoff from 200 ms
// to 30 s. While it fails, the service's health is NOT_SERVING with the
// dependency's name, the attempt and the error; each failure is logged.
func (d *Daemon) WaitFor(ctx context.Context, dependency string, try func(ctx context.Context) error) error {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := try(ctx)
		if err == nil {
			if attempt > 1 {
				d.Log.Info("dependency reachable", "dependency", dependency, "attempts", attempt)
			}
			d.Health.Set(dependency, true, "")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := fmt.Sprintf("waiting for %s (attempt %d, next in %s): %v", dependency, attempt, backoff, err)
		d.Health.Set(dependency, false, reason)
		d.Log.Warn("waiting for a dependency", "dependency", dependency, "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// probe calls try every interval until ctx ends, keeping the dependency's
// health in step with it.
func (d *Daemon) probe(ctx context.Context, dependency string, interval time.Duration, try func(ctx context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := try(pctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			d.Health.Set(dependency, false, fmt.Sprintf("%s unreachable: %v", dependency, err))
			if healthy {
				d.Log.Error("dependency unreachable", "dependency", dependency, "err", err)
			}
			healthy = false
		case err == nil && !healthy:
			d.Health.Set(dependency, true, "")
			d.Log.Info("dependency reachable again", "dependency", dependency)
			healthy = true
		}
	}
}

// RunStage runs a consume → process → produce → commit stage until ctx ends.
func (d *Daemon) RunStage(ctx context.Context, s Stage) error {
	if err := d.WaitForTopics(ctx, s.Access); err != nil {
		return err
	}
	group, inputs := s.Access.Group, s.Access.Inputs
	reader := kafkapipe.NewReader(d.Kafka, group, inputs...)
	defer reader.Close()
	d.kafkaStats.addReader(reader.R)
	sink := s.Sink
	var opened pipeline.Sink
	switch {
	case s.OpenSink != nil:
		// The runner is built now (control and health serve it at once);
		// its sink is opened in the work below, before the first batch.
		sink = pipeline.SinkFunc(func(ctx context.Context, outs []pipeline.Output) error { return opened.Write(ctx, outs) })
	case sink == nil:
		w := d.NewWriter()
		defer w.Close()
		sink = kafkapipe.Sink{W: w}
	}
	if d.Config.MaxBatch > 0 {
		s.MaxBatch = d.Config.MaxBatch
	}
	if d.Config.BatchWait > 0 {
		s.BatchWait = d.Config.BatchWait
	}
	if d.Config.MaxBatchBytes > 0 {
		s.MaxBatchBytes = int(d.Config.MaxBatchBytes)
	}
	s.MaxBatchBytes = cmp.Or(s.MaxBatchBytes, DefaultMaxBatchBytes)
	metrics := pipeline.NewMetrics(d.Registry)
	runner := pipeline.NewRunner(pipeline.Config{Stage: d.Name, MaxBatch: s.MaxBatch, MaxBatchBytes: s.MaxBatchBytes, BatchWait: s.BatchWait},
		reader, s.Processor, sink, d.Log, metrics)
	lag := func(ctx context.Context) (int64, error) {
		return kafkatopics.GroupLag(ctx, d.Kafka, group, inputs...)
	}
	d.Registry.MustRegister(&lagCollector{kafka: d.Kafka, group: group, topics: inputs,
		desc: prometheus.NewDesc("dmic_consumer_lag", "Messages of an input partition not yet committed by the service's consumer group.",
			[]string{"group", "topic", "partition"}, nil)})
	outputs := s.Outputs
	if outputs == nil {
		outputs = s.Access.Outputs
	}
	info := control.Info{ConsumerGroup: group, InputTopics: inputs, OutputTopics: outputs}
	aw := d.NewWriter()
	defer aw.Close()
	op := &operator{d: d, group: group, runner: runner, audit: kafkalog.New(d.Kafka, topics.OperatorAudit, aw)}
	d.operator = op
	run := func(ctx context.Context) error {
		op.followSkips(ctx)
		return runner.Run(ctx)
	}
	work := run
	if s.OpenSink != nil {
		work = func(ctx context.Context) error {
			var closeSink func()
			err := d.WaitFor(ctx, s.SinkName, func(ctx context.Context) error {
				var err error
				opened, closeSink, err = s.OpenSink(ctx)
				return err
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			defer closeSink()
			if s.Probe != nil {
				pctx, stop := context.WithCancel(ctx)
				defer stop()
				go d.probe(pctx, s.SinkName, cmp.Or(s.ProbeEvery, 5*time.Second), s.Probe)
			}
			return run(ctx)
		}
	}
	return d.Serve(ctx, info, runner, lag, work)
}

// NewWriter returns a Kafka writer with the configured compression.
func (d *Daemon) NewWriter() *kafkapipe.Writer {
	c, _ := kafkapipe.ParseCompression(d.Config.Compression) // checked by Validate
	w := kafkapipe.NewWriter(d.Kafka, kafkapipe.WithCompression(c))
	d.kafkaStats.addWriter(w)
	return w
}

// lagCollector reports the group's lag per input partition when scraped (a
// few Kafka requests per scrape, none between scrapes).
type lagCollector struct {
	kafka  kafkaconn.Cluster
	group  string
	topics []string
	desc   *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	parts, err := kafkatopics.GroupLagByPartition(ctx, c.kafka, c.group, c.topics...)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, p := range parts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(p.Lag), c.group, p.Topic, fmt.Sprint(p.Partition))
	}
}
