package load

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// InsertMetrics counts the INSERTs the store makes and their rows, per table
// (dmic_clickhouse_inserts_total, dmic_clickhouse_inserted_rows_total). Rows
// per insert is the figure that decides ClickHouse's cost per record: each
// insert makes a part per partition it touches, and every part is merged
// later (docs/performance.md).
func InsertMetrics(reg prometheus.Registerer) chstore.InsertObserver {
	inserts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dmic_clickhouse_inserts_total", Help: "INSERT statements acknowledged by ClickHouse, by table.",
	}, []string{"table"})
	rows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dmic_clickhouse_inserted_rows_total", Help: "Rows in the INSERTs acknowledged by ClickHouse, by table.",
	}, []string{"table"})
	reg.MustRegister(inserts, rows)
	return func(table string, n int) {
		inserts.WithLabelValues(table).Inc()
		rows.WithLabelValues(table).Add(float64(n))
	}
}
