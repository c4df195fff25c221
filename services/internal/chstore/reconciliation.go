package chstore

import (
	"time"

	"github.com/dmic-nhs/dmic/services/internal/record"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

type reconciliationRow struct {
	r    *dmicv1.ReconciliationResult
	date *time.Time
}

// PackedReconciliation is a reconciliation result as its row of the
// reconciliation table, packed (packed.go).
type PackedReconciliation struct{ b []byte }

// PackReconciliation is r's row of the reconciliation table. r is not kept.
func PackReconciliation(r *dmicv1.ReconciliationResult) PackedReconciliation {
	row := newReconciliationRow(r)
	return PackedReconciliation{packRowSized(reconciliationColumns, &row, 256)}
}

func newReconciliationRow(r *dmicv1.ReconciliationResult) reconciliationRow {
	return reconciliationRow{r: r, date: datePtr(r.GetActivityDate())}
}

func statusName(s dmicv1.ReconciliationStatus) string {
	switch s {
	case dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED:
		return "matched"
	case dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY:
		return "local_only"
	case dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_NATIONAL_ONLY:
		return "national_only"
	case dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED:
		return "mismatched"
	}
	return "unspecified"
}

// reconciliationColumns is the reconciliation table.
var reconciliationColumns = []column[reconciliationRow]{
	strCol("match_key", func(r *reconciliationRow) string { return r.r.GetMatchKey() }),
	u64Col("sequence", func(r *reconciliationRow) uint64 { return r.r.GetSequence() }),
	strCol("status", func(r *reconciliationRow) string { return statusName(r.r.GetStatus()) }),
	strCol("dataset", func(r *reconciliationRow) string { return record.DatasetName(r.r.GetDataset()) }),
	strCol("provider_code", func(r *reconciliationRow) string { return r.r.GetProviderCode() }),
	strCol("local_record_key", func(r *reconciliationRow) string { return r.r.GetLocalRecordKey() }),
	strCol("national_record_key", func(r *reconciliationRow) string { return r.r.GetNationalRecordKey() }),
	u64Col("local_version", func(r *reconciliationRow) uint64 { return r.r.GetLocalVersion() }),
	u64Col("national_version", func(r *reconciliationRow) uint64 { return r.r.GetNationalVersion() }),
	strArrayCol("differing_fields", func(r *reconciliationRow) []string {
		if f := r.r.GetDifferingFields(); f != nil {
			return f
		}
		return []string{}
	}),
	nullDateCol("activity_date", func(r *reconciliationRow) *time.Time { return r.date }),
	loadedAt[reconciliationRow](),
}
