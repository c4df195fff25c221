package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Table and view names in the dmic database.
const (
	TableActivity          = "activity"
	TableRejections        = "rejections"
	TableReconciliation    = "reconciliation"
	TableOutcomes          = "validation_outcomes"
	TableSubmissions       = "submissions"
	ViewActivityCurrent    = "activity_current"
	ViewRejectionsSummary  = "rejections_summary"
	ViewDQSummary          = "dq_summary"
	ViewDQRuleSummary      = "dq_rule_summary"
	ViewSmallNumbers       = "small_numbers"
	partitionsPerInsertMax = 90 // below current ClickHouse's max_partitions_per_insert_block (100)
)

// tableDef is the DDL of one table, independent of its row type.
type tableDef struct {
	name    string
	columns []columnDDL
	// engine is everything after the column list.
	engine string
}

type columnDDL struct{ name, ddl string }

func ddlOf[R any](cols []column[R]) []columnDDL {
	out := make([]columnDDL, len(cols))
	for i, c := range cols {
		out[i] = columnDDL{c.name, c.ddl()}
	}
	return out
}

// tables returns dmic's tables.
//
// Why these engines and keys:
//   - activity: one row per revision of a record; ReplacingMergeTree(version)
//     ordered by record_key keeps the highest version (a delete is a revision
//     with deleted = 1). Partitioned by activity month for pruning and for
//     dropping old months. Background merges only collapse rows within a
//     partition, so a revision that moves a record to another month leaves the
//     old row in the old partition until a query uses FINAL, which collapses
//     across partitions (tested on 18.16): the views use FINAL.
//   - rejections: one row per failure of a dead letter, keyed by the position
//     the dead letter names (topic, partition, offset) plus the record and
//     rule, so a redelivered dead letter replaces itself. The record fields
//     keep apart rejections that have no position (a record refused at the
//     ingest door has no source offset).
//   - reconciliation: the latest state of a match key wins by sequence.
//   - validation_outcomes: one row per submitted record, keyed by (submission
//     id, position within it; see dqreport.Position), with the validated time
//     as version: a redelivered outcome replaces itself, and a re-validation
//     (a record judged again after a specification change) replaces the older
//     verdict. Partitioned by month of receipt, which every verdict on a record
//     shares (it comes from the record's envelope), so background merges can
//     collapse them; queries use FINAL all the same.
//   - submissions: one receipt per submission id; a redelivered receipt
//     replaces itself. Small, so unpartitioned.
func tables() []tableDef {
	return []tableDef{
		{
			name:    TableActivity,
			columns: ddlOf(activityColumns),
			engine:  "ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(activity_date) ORDER BY (record_key)",
		},
		{
			name:    TableRejections,
			columns: ddlOf(rejectionColumns),
			engine: "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(rejected_time) " +
				"ORDER BY (source_topic, source_partition, source_offset, submission_id, line_number, record_id, stage, rule_id, field)",
		},
		{
			name:    TableReconciliation,
			columns: ddlOf(reconciliationColumns),
			engine:  "ENGINE = ReplacingMergeTree(sequence) ORDER BY (match_key)",
		},
		{
			name:    TableOutcomes,
			columns: ddlOf(outcomeColumns),
			engine:  "ENGINE = ReplacingMergeTree(validated_time) PARTITION BY toYYYYMM(received_time) ORDER BY (submission_id, position)",
		},
		{
			name:    TableSubmissions,
			columns: ddlOf(receiptColumns),
			engine:  "ENGINE = ReplacingMergeTree() ORDER BY (submission_id)",
		},
	}
}

func (t tableDef) createSQL(db string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s (\n", db, t.name)
	for i, c := range t.columns {
		b.WriteString("    " + c.ddl)
		if i < len(t.columns)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(") " + t.engine)
	return b.String()
}

// viewDef is an analyst view: its name, its columns (to detect an outdated
// definition) and its query.
type viewDef struct {
	name    string
	columns []string
	query   string
}

func (v viewDef) createSQL(db string) string {
	return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s AS %s", db, v.name, v.query)
}

// activityViewExtra are the columns activity_current adds from reconciliation.
var activityViewExtra = []string{"reconciliation_status", "reconciliation_differing_fields", "reconciliation_sequence"}

func views(db string) []viewDef {
	var actCols []string
	for _, c := range activityColumns {
		if c.name != "deleted" { // always 0 in the view
			actCols = append(actCols, c.name)
		}
	}
	list := strings.Join(actCols, ", ")
	// ANY LEFT JOIN ... USING with aliased subqueries is the join form both
	// 18.16 and current releases (which require subquery aliases by default)
	// accept. The right side is renamed so that only match_key is shared.
	// FINAL runs before WHERE deleted = 0 (18.16 does not move WHERE to PREWHERE
	// under FINAL; tested), so a delete hides the record instead of resurrecting
	// an older version.
	activityCurrent := fmt.Sprintf(`SELECT %s, %s
FROM (SELECT %s FROM %s.activity FINAL WHERE deleted = 0) AS a
ANY LEFT JOIN (
    SELECT match_key, status AS reconciliation_status, differing_fields AS reconciliation_differing_fields, sequence AS reconciliation_sequence
    FROM %s.reconciliation FINAL
) AS r USING (match_key)`, list, strings.Join(activityViewExtra, ", "), list, db, db)

	rejectionsSummary := fmt.Sprintf(`SELECT
    toDate(rejected_time) AS day, provider_code, dataset, source, stage, rule_id, field, severity,
    count() AS failures,
    uniqExact(source_topic, source_partition, source_offset, submission_id, line_number, record_id) AS records
FROM %s.rejections FINAL
GROUP BY day, provider_code, dataset, source, stage, rule_id, field, severity`, db)

	// Month of receipt (toStartOfMonth(received_time), in the server's time
	// zone, UTC on dmic servers), not month of activity: data quality is
	// about what a provider sent in a month. valid_share is the share of
	// records that passed (accepted or warned).
	dqSummary := fmt.Sprintf(`SELECT
    provider_code, dataset, source, toStartOfMonth(received_time) AS month,
    count() AS records,
    countIf(outcome = 'accepted') AS accepted,
    countIf(outcome = 'warned') AS warned,
    countIf(outcome = 'rejected') AS rejected,
    (accepted + warned) / records AS valid_share
FROM %s.validation_outcomes FINAL
GROUP BY provider_code, dataset, source, month`, db)

	// ARRAY JOIN runs on the collapsed rows of the subquery, so a replaced
	// verdict's failures are not counted. records counts distinct records: a
	// record breaking one rule on one field twice counts once.
	dqRuleSummary := fmt.Sprintf(`SELECT
    provider_code, dataset, source, month, rule_id, field, severity,
    uniqExact(submission_id, position) AS records
FROM (
    SELECT provider_code, dataset, source, toStartOfMonth(received_time) AS month, submission_id, position,
        failure_rule_id, failure_field, failure_severity
    FROM %s.validation_outcomes FINAL
)
ARRAY JOIN failure_rule_id AS rule_id, failure_field AS field, failure_severity AS severity
GROUP BY provider_code, dataset, source, month, rule_id, field, severity`, db)

	return []viewDef{
		{name: ViewActivityCurrent, columns: slices.Concat(actCols, activityViewExtra), query: activityCurrent},
		{
			name:    ViewRejectionsSummary,
			columns: []string{"day", "provider_code", "dataset", "source", "stage", "rule_id", "field", "severity", "failures", "records"},
			query:   rejectionsSummary,
		},
		{
			name:    ViewDQSummary,
			columns: []string{"provider_code", "dataset", "source", "month", "records", "accepted", "warned", "rejected", "valid_share"},
			query:   dqSummary,
		},
		{
			name:    ViewDQRuleSummary,
			columns: []string{"provider_code", "dataset", "source", "month", "rule_id", "field", "severity", "records"},
			query:   dqRuleSummary,
		},
		smallNumbersView(db),
	}
}

// ApplySchema creates dmic's database, tables and views when they are missing,
// and brings older ones up to date, so that every service can run it at start.
//
// It is idempotent and safe to run concurrently from several processes: every
// statement is IF NOT EXISTS, and a statement that fails because another
// process won the race is accepted once the object is seen to exist. Tables only
// ever gain columns (ALTER TABLE ADD COLUMN for any that are missing, since
// 18.16 has no ADD COLUMN IF NOT EXISTS); a view that lacks a column is dropped
// and created again. Nothing is ever dropped from a table.
func ApplySchema(ctx context.Context, conn driver.Conn, database string) error {
	if err := validateDatabase(database); err != nil {
		return err
	}
	db := database
	if err := execUntil(ctx, conn, "CREATE DATABASE IF NOT EXISTS "+db, func() (bool, error) {
		return exists(ctx, conn, "SELECT count() FROM system.databases WHERE name = ?", db)
	}); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	for _, t := range tables() {
		if err := execUntil(ctx, conn, t.createSQL(db), tableExists(ctx, conn, db, t.name)); err != nil {
			return fmt.Errorf("create table %s.%s: %w", db, t.name, err)
		}
		if err := addMissingColumns(ctx, conn, db, t); err != nil {
			return err
		}
	}
	for _, v := range views(db) {
		if err := ensureView(ctx, conn, db, v); err != nil {
			return err
		}
	}
	return nil
}

func addMissingColumns(ctx context.Context, conn driver.Conn, db string, t tableDef) error {
	have, err := columnNames(ctx, conn, db, t.name)
	if err != nil {
		return err
	}
	for _, c := range t.columns {
		if have[c.name] {
			continue
		}
		stmt := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s", db, t.name, c.ddl)
		err := execUntil(ctx, conn, stmt, func() (bool, error) {
			cols, err := columnNames(ctx, conn, db, t.name)
			return cols[c.name], err
		})
		if err != nil {
			return fmt.Errorf("add column %s to %s.%s: %w", c.name, db, t.name, err)
		}
	}
	return nil
}

func ensureView(ctx context.Context, conn driver.Conn, db string, v viewDef) error {
	if err := execUntil(ctx, conn, v.createSQL(db), tableExists(ctx, conn, db, v.name)); err != nil {
		return fmt.Errorf("create view %s.%s: %w", db, v.name, err)
	}
	have, err := columnNames(ctx, conn, db, v.name)
	if err != nil {
		return err
	}
	outdated := false
	for _, c := range v.columns {
		if !have[c] {
			outdated = true
			break
		}
	}
	if !outdated {
		// A view with more columns than this version knows was made by a newer
		// version: leave it, so that old and new services do not take turns.
		return nil
	}
	// 18.16 has no CREATE OR REPLACE VIEW. A view holds no data, so the brief
	// moment without it costs only a failed analyst query.
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", db, v.name)); err != nil {
		return fmt.Errorf("drop outdated view %s.%s: %w", db, v.name, err)
	}
	if err := execUntil(ctx, conn, v.createSQL(db), tableExists(ctx, conn, db, v.name)); err != nil {
		return fmt.Errorf("recreate view %s.%s: %w", db, v.name, err)
	}
	return nil
}

// execUntil runs an idempotent DDL statement. When it fails, another process
// may have run the same statement at the same moment (18.16 answers a
// concurrent CREATE ... IF NOT EXISTS with "already exists" or "is being
// created"): the statement counts as done once done() says the object exists.
func execUntil(ctx context.Context, conn driver.Conn, stmt string, done func() (bool, error)) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = conn.Exec(ctx, stmt); err == nil {
			return nil
		}
		if ok, cerr := done(); cerr == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (context: %w)", err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

func tableExists(ctx context.Context, conn driver.Conn, db, name string) func() (bool, error) {
	return func() (bool, error) {
		return exists(ctx, conn, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, name)
	}
}

func exists(ctx context.Context, conn driver.Conn, query string, args ...any) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

func columnNames(ctx context.Context, conn driver.Conn, db, table string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", db, table)
	if err != nil {
		return nil, fmt.Errorf("list columns of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list columns of %s.%s: %w", db, table, err)
		}
		names[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns of %s.%s: %w", db, table, err)
	}
	return names, nil
}
