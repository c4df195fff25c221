package reconcile

import (
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the state's: how much it holds, and what bringing it up to
// date with the changelog costs.
type metrics struct {
	keys     *prometheus.GaugeVec
	checks   *prometheus.CounterVec
	restored *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	disk     prometheus.GaugeFunc
	memory   prometheus.GaugeFunc
}

func newMetrics(db *pebble.DB) *metrics {
	return &metrics{
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dmic_reconcile_state_keys",
			Help: "Match keys held in the state store, by changelog partition (including partitions this instance held before and may be given again)."},
			[]string{"partition"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_reconcile_changelog_checks_total",
			Help: "Changelog partitions checked before a batch, by result: current (nothing to read), behind (another writer added to it: read the gap), rebuild."},
			[]string{"result"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_reconcile_restored_messages_total",
			Help: "Changelog messages read into the state store, by reason (behind, rebuild)."}, []string{"reason"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dmic_reconcile_restore_duration_seconds",
			Help:    "Time to read a changelog partition's missing part into the state store, by reason.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"reason"}),
		disk: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dmic_reconcile_store_disk_bytes",
			Help: "Disk space the state store uses."}, func() float64 { return float64(db.Metrics().DiskSpaceUsage()) }),
		memory: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dmic_reconcile_store_memory_bytes",
			Help: "Memory of the state store outside the Go heap: its block cache and memtables."}, func() float64 {
			m := db.Metrics()
			return float64(m.BlockCache.Size + int64(m.MemTable.Size))
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.keys, m.checks, m.restored, m.seconds, m.disk, m.memory}
}

// startRestore times a read of the changelog (an elapsed time, not a
// decision: no clock.Clock); the returned func records it.
func (m *metrics) startRestore(reason string) func() time.Duration {
	return prometheus.NewTimer(m.seconds.WithLabelValues(reason)).ObserveDuration
}
