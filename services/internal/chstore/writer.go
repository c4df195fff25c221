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
//
// A batch whose activity dates span more than 90 months is sent as several
// INSERTs of at most 90 months each: current ClickHouse refuses an INSERT that
// touches more than 100 partitions (max_partitions_per_insert_block), which
// would otherwise make a historical refresh an unwritable batch.
func (w *Writer) WriteActivity(ctx context.Context, recs []*dmicv1.DeidentifiedRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	now := w.clock.Now()
	rows := make([]activityRow, 0, len(recs))
	for _, rec := range recs {
		if rec != nil {
			rows = append(rows, newActivityRow(rec, now))
		}
	}
	for _, chunk := range splitByMonth(rows, partitionsPerInsertMax) {
		if err := insert(ctx, w.conn, w.db, w.observe, TableActivity, activityColumns, chunk); err != nil {
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
// with the highest sequence is the current state.
func (w *Writer) WriteReconciliation(ctx context.Context, rs []*dmicv1.ReconciliationResult) error {
	if len(rs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insert(ctx, w.conn, w.db, w.observe, TableReconciliation, reconciliationColumns, reconciliationRows(rs))
}

// WriteOutcomes inserts one row per validation outcome (its failures as
// arrays). Per record (submission id, position) the verdict with the latest
// validated time is the current one, so redeliveries and re-validations may
// arrive in any order. Nil outcomes are skipped; no outcomes is a no-op.
//
// Unlike WriteActivity, a batch is not split by month: rows are partitioned by
// month of receipt, and a batch of outcomes spans a few days of receipts, far
// from the 100 partitions current ClickHouse allows one INSERT.
func (w *Writer) WriteOutcomes(ctx context.Context, outs []*validationv1.ValidationOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insert(ctx, w.conn, w.db, w.observe, TableOutcomes, outcomeColumns, outcomeRows(outs))
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
		if c.values != nil {
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
const blockRows = 2048

// insert sends rows as one INSERT, column by column, in blocks of blockRows.
func insert[R any](ctx context.Context, conn driver.Conn, db string, observe InsertObserver, table string, cols []column[R], rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, insertSQL(db, table, cols))
	if err != nil {
		return fmt.Errorf("insert into %s.%s: prepare: %w", db, table, err)
	}
	defer batch.Close()
	for block := range slices.Chunk(rows, blockRows) {
		i := 0
		for _, c := range cols {
			if c.values == nil {
				continue
			}
			if err := batch.Column(i).Append(c.values(block)); err != nil {
				return fmt.Errorf("insert into %s.%s: column %s: %w", db, table, c.name, err)
			}
			i++
		}
		if len(block) == blockRows {
			if err := batch.Flush(); err != nil {
				return fmt.Errorf("insert %d rows into %s.%s: send a block: %w", len(rows), db, table, err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s.%s: %w", len(rows), db, table, err)
	}
	if observe != nil {
		observe(table, len(rows))
	}
	return nil
}

// splitByMonth returns rows as chunks that each span at most maxMonths
// activity months. Almost every batch spans few months and comes back whole.
func splitByMonth(rows []activityRow, maxMonths int) [][]activityRow {
	months := map[int]struct{}{}
	for i := range rows {
		months[monthOf(rows[i].date)] = struct{}{}
		if len(months) > maxMonths {
			break
		}
	}
	if len(months) <= maxMonths {
		return [][]activityRow{rows}
	}
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b activityRow) int { return monthOf(a.date) - monthOf(b.date) })
	var chunks [][]activityRow
	start, n, prev := 0, 0, -1
	for i := range sorted {
		m := monthOf(sorted[i].date)
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
