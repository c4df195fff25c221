package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Writer inserts batches into dmic's tables. Each Write call is one INSERT
// (ClickHouse wants few large inserts: call it with 10k–100k rows, about once a
// second per table, not per record). A failed call may have written some or
// all of its rows; calling it again with the same batch is harmless, because
// every table collapses identical keys. A Writer is safe for concurrent use.
type Writer struct {
	conn    driver.Conn
	db      string
	err     error
	clock   clock.Clock
	observe InsertObserver
}

// InsertObserver is told of every INSERT a Writer made, once the server has
// acknowledged it: the table and the number of rows. How many inserts a
// record costs, and how large they are, is what decides ClickHouse's share of
// the CPU (docs/performance.md), so the load service counts them.
type InsertObserver func(table string, rows int)

// WriterOption configures a Writer.
type WriterOption func(*Writer)

// WithClock sets the clock whose date stands in for the activity date of a
// record that has neither an activity date nor a received time. Without it
// the writer reads the wall clock.
func WithClock(c clock.Clock) WriterOption { return func(w *Writer) { w.clock = c } }

// WithInsertObserver calls o after each acknowledged INSERT.
func WithInsertObserver(o InsertObserver) WriterOption {
	return func(w *Writer) { w.observe = o }
}

// NewWriter returns a Writer into database's tables, which ApplySchema has created.
func NewWriter(conn driver.Conn, database string, opts ...WriterOption) *Writer {
	w := &Writer{conn: conn, db: database, err: validateDatabase(database)}
	for _, o := range opts {
		o(w)
	}
	return w
}

// WriteActivity inserts one row per record into activity. A record with update
// type DELETE is written as a tombstone (deleted = 1) that hides the record
// from activity_current. Nil records are skipped; no records is a no-op.
func (w *Writer) WriteActivity(ctx context.Context, recs []*dmicv1.DeidentifiedRecord) error {
	now := w.clock.Now()
	rows := make([]PackedActivity, 0, len(recs))
	for _, rec := range recs {
		if rec != nil {
			rows = append(rows, PackActivity(rec, now))
		}
	}
	return w.WritePackedActivity(ctx, rows)
}

// WritePackedActivity inserts packed rows (PackActivity) into activity.
//
// A batch whose activity dates span more than 90 months is sent as several
// INSERTs of at most 90 months each: current ClickHouse refuses an INSERT that
// touches more than 100 partitions (max_partitions_per_insert_block), which
// would otherwise make a historical refresh an unwritable batch.
func (w *Writer) WritePackedActivity(ctx context.Context, rows []PackedActivity) error {
	if len(rows) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	for _, chunk := range splitByMonth(rows, PackedActivity.month, partitionsPerInsertMax) {
		if err := insertPacked(ctx, w.conn, w.db, w.observe, TableActivity, activityColumns, nil,
			len(chunk), func(i int) []byte { return chunk[i].b }); err != nil {
			return err
		}
	}
	return nil
}

// WriteRejections inserts one row per Failure of each dead letter (one row with
// rule UNKNOWN for a dead letter without failures). Payloads are not stored.
func (w *Writer) WriteRejections(ctx context.Context, dls []*dmicv1.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insert(ctx, w.conn, w.db, w.observe, TableRejections, rejectionColumns, rejectionRows(dls))
}

// WriteReconciliation inserts reconciliation results; per match key the one
// with the highest sequence is the current state. Nil results are skipped.
func (w *Writer) WriteReconciliation(ctx context.Context, rs []*dmicv1.ReconciliationResult) error {
	rows := make([]PackedReconciliation, 0, len(rs))
	for _, r := range rs {
		if r != nil {
			rows = append(rows, PackReconciliation(r))
		}
	}
	return w.WritePackedReconciliation(ctx, rows)
}

// WritePackedReconciliation inserts packed rows (PackReconciliation).
func (w *Writer) WritePackedReconciliation(ctx context.Context, rows []PackedReconciliation) error {
	if len(rows) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insertPacked(ctx, w.conn, w.db, w.observe, TableReconciliation, reconciliationColumns, nil,
		len(rows), func(i int) []byte { return rows[i].b })
}

// WriteOutcomes inserts one row per validation outcome (its failures as
// arrays). Per record (submission id, position) the verdict with the latest
// validated time is the current one, so redeliveries and re-validations may
// arrive in any order. Nil outcomes are skipped; no outcomes is a no-op.
func (w *Writer) WriteOutcomes(ctx context.Context, outs []*validationv1.ValidationOutcome) error {
	rows := make([]PackedOutcome, 0, len(outs))
	for _, o := range outs {
		if o != nil {
			rows = append(rows, PackOutcome(o))
		}
	}
	return w.WritePackedOutcomes(ctx, rows)
}

// WritePackedOutcomes inserts packed rows (PackOutcome).
//
// Unlike activity, a batch is not split by month: rows are partitioned by
// month of receipt, and a batch of outcomes spans a few days of receipts, far
// from the 100 partitions current ClickHouse allows one INSERT.
func (w *Writer) WritePackedOutcomes(ctx context.Context, rows []PackedOutcome) error {
	if len(rows) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insertPacked(ctx, w.conn, w.db, w.observe, TableOutcomes, outcomeColumns, nil,
		len(rows), func(i int) []byte { return rows[i].b })
}

// WriteReceipts inserts one row per submission receipt; per submission id the
// last one inserted counts. Nil receipts are skipped; none is a no-op.
func (w *Writer) WriteReceipts(ctx context.Context, rs []*validationv1.SubmissionReceipt) error {
	if len(rs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	rows := make([]*validationv1.SubmissionReceipt, 0, len(rs))
	for _, r := range rs {
		if r != nil {
			rows = append(rows, r)
		}
	}
	return insert(ctx, w.conn, w.db, w.observe, TableSubmissions, receiptColumns, rows)
}

// insertSQL lists the inserted columns: clickhouse-go's PrepareBatch needs them
// (with a bare INSERT INTO t it fails against 18.16 with "expected 0 arguments"),
// and it leaves server-filled columns such as loaded_at out.
func insertSQL[R any](db, table string, cols []column[R]) string {
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		if c.inserted() {
			names = append(names, c.name)
		}
	}
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", db, table, strings.Join(names, ", "))
}

// blockRows is how many rows insert sends as one block of its INSERT. The
// driver holds a block's columns three times while it sends it (the columns,
// encoded, compressed), so a whole batch as one block held about three times
// its rows' bytes at once (load's largest allocation, docs/performance.md,
// Memory); blocks of this size hold a few MB. The server squashes the blocks
// of one INSERT into one part per partition (ClickHouse 18.16 too, up to
// min_insert_block_size_rows), so the parts, and the merges, are those of one
// block.
//
// Each INSERT's columns in the driver start empty and grow by appending
// through its first block, to a block's size; they were a quarter of what
// load allocated (2,048 rows), and with the six tables written at once
// about 20 MB of its live heap. 1,024 rows halves both, for twice as many
// blocks of about 600 KB each, whose own cost is small beside their rows.
const blockRows = 1024

// splitByMonth returns rows as chunks that each span at most maxMonths
// activity months (month numbers them). Almost every batch spans few months
// and comes back whole.
func splitByMonth[T any](rows []T, month func(T) int, maxMonths int) [][]T {
	months := map[int]struct{}{}
	for i := range rows {
		months[month(rows[i])] = struct{}{}
		if len(months) > maxMonths {
			break
		}
	}
	if len(months) <= maxMonths {
		return [][]T{rows}
	}
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b T) int { return month(a) - month(b) })
	var chunks [][]T
	start, n, prev := 0, 0, -1
	for i := range sorted {
		m := month(sorted[i])
		if m != prev {
			if n == maxMonths {
				chunks = append(chunks, sorted[start:i])
				start, n = i, 0
			}
			n++
			prev = m
		}
	}
	return append(chunks, sorted[start:])
}

func monthOf(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }

func tsTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
