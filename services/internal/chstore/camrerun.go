package chstore

import (
	"context"
	"time"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
)

// TableCamRerun holds the re-runs of commissioner assignment under a chosen
// CAM version (assign's RerunAssignments, through dmic.cam-reruns): one row
// per record of a run, moved or not, so that a run's totals reconcile with
// the activity it read (docs/commissioner-assignment.md, Re-run).
const TableCamRerun = "cam_rerun"

// camRerunRow is a CamRerunRow ready for its columns.
type camRerunRow struct {
	r    *assignmentv1.CamRerunRow
	time time.Time
}

// camRerunColumns is the cam_rerun table.
var camRerunColumns = []column[camRerunRow]{
	strCol("run_id", func(r *camRerunRow) string { return r.r.GetRunId() }),
	dateTimeCol("run_time", func(r *camRerunRow) time.Time { return r.time }),
	strCol("cam_version", func(r *camRerunRow) string { return r.r.GetCamVersion() }),
	strCol("label", func(r *camRerunRow) string { return r.r.GetLabel() }),
	strCol("period_from", func(r *camRerunRow) string { return r.r.GetPeriodFrom() }),
	strCol("period_to", func(r *camRerunRow) string { return r.r.GetPeriodTo() }),
	strCol("record_key", func(r *camRerunRow) string { return r.r.GetRecordKey() }),
	u64Col("version", func(r *camRerunRow) uint64 { return r.r.GetVersion() }),
	strCol("provider_code", func(r *camRerunRow) string { return r.r.GetProviderCode() }),
	strCol("dataset", func(r *camRerunRow) string { return r.r.GetDataset() }),
	strCol("cam_date", func(r *camRerunRow) string { return r.r.GetCamDate() }),
	strCol("from_cam_version", func(r *camRerunRow) string { return r.r.GetFromCamVersion() }),
	strCol("from_commissioner", func(r *camRerunRow) string { return r.r.GetFromCommissioner() }),
	strCol("to_commissioner", func(r *camRerunRow) string { return r.r.GetToCommissioner() }),
	strCol("from_step", func(r *camRerunRow) string { return r.r.GetFromStep() }),
	strCol("to_step", func(r *camRerunRow) string { return r.r.GetToStep() }),
	strCol("from_reason_code", func(r *camRerunRow) string { return r.r.GetFromReasonCode() }),
	strCol("to_reason_code", func(r *camRerunRow) string { return r.r.GetToReasonCode() }),
	strCol("to_service_category", func(r *camRerunRow) string { return r.r.GetToServiceCategory() }),
	i64Col("activity_count", func(r *camRerunRow) int64 { return r.r.GetActivityCount() }),
	i64Col("price_pence", func(r *camRerunRow) int64 { return r.r.GetPricePence() }),
	// Computed by the server, so that every writer agrees: the commissioner
	// changes (moved), or only the step (step_changed).
	serverCol[camRerunRow]("moved", "UInt8", "from_commissioner != to_commissioner"),
	serverCol[camRerunRow]("step_changed", "UInt8", "from_commissioner = to_commissioner AND from_step != to_step"),
	loadedAt[camRerunRow](),
}

// WriteCamReruns inserts one row per record of a re-run. A row is its run
// and record: a redelivered row replaces itself. None is a no-op.
func (w *Writer) WriteCamReruns(ctx context.Context, rs []*assignmentv1.CamRerunRow) error {
	if len(rs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	rows := make([]camRerunRow, 0, len(rs))
	for _, r := range rs {
		if r != nil {
			t := time.Time{}
			if r.GetRunTime() != nil {
				t = r.GetRunTime().AsTime()
			}
			rows = append(rows, camRerunRow{r: r, time: clampDateTime(t)})
		}
	}
	return insert(ctx, w.conn, w.db, w.observe, TableCamRerun, camRerunColumns, rows)
}
