package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the runner's Prometheus metrics, registered once per process.
type Metrics struct {
	processed    *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	outputs      *prometheus.CounterVec
	failures     *prometheus.CounterVec
	sinkRetries  *prometheus.CounterVec
	batchSeconds *prometheus.HistogramVec
	paused       *prometheus.GaugeVec
	panics       *prometheus.CounterVec
	healthy      *prometheus.GaugeVec
	lastProgress *prometheus.GaugeVec
}

// NewMetrics registers the runner metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_messages_processed_total",
			Help: "Input messages processed and committed."}, []string{"stage"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_messages_rejected_total",
			Help: "Input messages sent to the dead-letter topic."}, []string{"stage"}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_messages_produced_total",
			Help: "Output messages or rows written."}, []string{"stage"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_rule_failures_total",
			Help: "Rule failures of rejected messages, by rule id."}, []string{"stage", "rule"}),
		sinkRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_sink_retries_total",
			Help: "Failed output writes that were retried."}, []string{"stage"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dmic_batch_duration_seconds",
			Help: "Time to process, write and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"stage"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_stage_panics_total",
			Help: "Messages on which the stage panicked (dead-lettered)."}, []string{"stage"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dmic_paused",
			Help: "1 while the stage is paused."}, []string{"stage"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dmic_stage_healthy",
			Help: "0 while the stage cannot write or commit a batch (past the unhealthy threshold), else 1."}, []string{"stage"}),
		lastProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dmic_last_progress_timestamp_seconds",
			Help: "When the stage last committed a batch (Unix seconds)."}, []string{"stage"}),
	}
	reg.MustRegister(m.processed, m.rejected, m.outputs, m.failures, m.sinkRetries, m.batchSeconds, m.paused, m.panics,
		m.healthy, m.lastProgress)
	return m
}
