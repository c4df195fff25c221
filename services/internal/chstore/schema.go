package chstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
)

// Table and view names in the dmic database.
const (
	TableActivity          = "activity"
	TableRejections        = "rejections"
	TableReconciliation    = "reconciliation"
	TableOutcomes          = "validation_outcomes"
	TableSubmissions       = "submissions"
	TableAudit             = "audit" // the security audit trail (dmic.audit; docs/security.md, Audit)
	ViewActivityCurrent    = "activity_current"
	ViewRejectionsSummary  = "rejections_summary"
	ViewDQSummary          = "dq_summary"
	ViewDQRuleSummary      = "dq_rule_summary"
	ViewSmallNumbers       = "small_numbers"
	ViewSubmissionStatus   = "submission_status"
	partitionsPerInsertMax = 90 // below current ClickHouse's max_partitions_per_insert_block (100)
)

// tableDef is the DDL of one table, independent of its row type.
type tableDef struct {
	name    string
	columns []columnDDL
	// engine is the engine and its settings before ORDER BY (PARTITION BY
	// included); the DDL appends ORDER BY (orderBy).
	engine  string
	orderBy []string
	// partition is the partition expression, when there is one: a table
	// rebuilt with another layout is copied one partition at a time.
	partition string
	// layout numbers the layouts (sorting key and partition expression) the
	// table has had (1 for the first). A table whose sorting key is not
	// orderBy, or whose partition expression is not partition, is of
	// layout-1 and is rebuilt (see migrateLayout); its old copy is kept as
	// <name>_layout<layout-1>.
	layout int
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
//     with deleted = 1). Partitioned by activity year, for pruning and for
//     dropping old years. Background merges only collapse rows within a
//     partition, so a revision that moves a record to another year leaves the
//     old row in the old partition until a query uses FINAL, which collapses
//     across partitions (tested on 18.16): the views use FINAL. Layout 2:
//     layout 1 was partitioned by activity month, so that one insert of a
//     batch spanning a year of activity made about 12 parts of 72 columns
//     each, and ClickHouse spent most of its CPU creating and merging their
//     files (docs/performance.md, Issue 15 pass).
//   - rejections: one row per failure of a dead letter, keyed by the record
//     (its submission and position in it), the stage, the rule and field, and
//     the topic the stage read (position is computed by the server from the
//     other columns, see rejectionPositionSQL). A redelivered dead letter
//     replaces itself, and so does a resend of a submission: the same
//     submission id (ingest gives a resend the id of the first attempt) and
//     line, though its records have new raw offsets. A dead letter without a
//     submission and line is told apart by its source partition and offset.
//     Layout 2: layout 1 was keyed by source topic, partition and offset, so
//     a resend added its rejections to the first attempt's.
//   - reconciliation: the latest state of a match key wins by sequence.
//   - validation_outcomes: one row per submitted record, keyed by (submission
//     id, position within it; see dqreport.Position), with the validated time
//     as version: a redelivered outcome replaces itself, and a re-validation
//     (a record judged again after a specification change) replaces the older
//     verdict. Partitioned by month of receipt, which every verdict on a record
//     shares (it comes from the record's envelope), so background merges can
//     collapse them; queries use FINAL all the same.
//   - submissions: the receipts of each attempt to store a submission (its
//     start, and how it ended), one row per (submission id, attempt, state);
//     a redelivered receipt replaces itself. submission_status reads the
//     submission's state from them. Small, so unpartitioned. Layout 2: layout
//     1 kept one receipt per submission id, the last inserted, which lets a
//     resend's start hide that an earlier attempt had finished.
//   - audit: the security audit trail, one row per entry, keyed by the
//     call's id and the outcome (a call's entries share its id: allowed,
//     then done or failed), so a redelivered entry replaces itself.
//     Partitioned by month, for queries of recent entries and for dropping
//     months past their retention.
//   - cam_rerun: one row per record of a re-run of commissioner assignment,
//     keyed by the run and the record, so a redelivered row replaces itself.
//     Partitioned by month of the run, so an old run's month can be dropped.
func tables() []tableDef {
	return []tableDef{
		{
			name:    TableActivity,
			columns: ddlOf(activityColumns),
			engine:  "ENGINE = ReplacingMergeTree(version) PARTITION BY toYear(activity_date)",
			orderBy: []string{"record_key"}, partition: "toYear(activity_date)", layout: 2,
		},
		{
			name:      TableRejections,
			columns:   ddlOf(rejectionColumns),
			engine:    "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(rejected_time)",
			orderBy:   []string{"submission_id", "position", "stage", "rule_id", "field", "source_topic"},
			partition: "toYYYYMM(rejected_time)", layout: 2,
		},
		{
			name:    TableReconciliation,
			columns: ddlOf(reconciliationColumns),
			engine:  "ENGINE = ReplacingMergeTree(sequence)",
			orderBy: []string{"match_key"}, layout: 1,
		},
		{
			name:    TableOutcomes,
			columns: ddlOf(outcomeColumns),
			engine:  "ENGINE = ReplacingMergeTree(validated_time) PARTITION BY toYYYYMM(received_time)",
			orderBy: []string{"submission_id", "position"}, partition: "toYYYYMM(received_time)", layout: 1,
		},
		{
			name:    TableSubmissions,
			columns: ddlOf(receiptColumns),
			engine:  "ENGINE = ReplacingMergeTree()",
			orderBy: []string{"submission_id", "attempt", "state"}, layout: 2,
		},
		{
			name:    TableAudit,
			columns: ddlOf(auditColumns),
			engine:  "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(time)",
			orderBy: []string{"id", "outcome"}, partition: "toYYYYMM(time)", layout: 1,
		},
		{
			name:    TableCamRerun,
			columns: ddlOf(camRerunColumns),
			engine:  "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(run_time)",
			orderBy: []string{"run_id", "record_key"}, partition: "toYYYYMM(run_time)", layout: 1,
		},
	}
}

func (t tableDef) createSQL(db string) string {
	return t.createAsSQL(db, t.name)
}

// createAsSQL is the table's DDL under another name.
func (t tableDef) createAsSQL(db, name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s (\n", db, name)
	for i, c := range t.columns {
		b.WriteString("    " + c.ddl)
		if i < len(t.columns)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(") " + t.engine + " ORDER BY (" + strings.Join(t.orderBy, ", ") + ")")
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

	// records counts distinct rejected records: a submission's record is its
	// position, one without a submission its source topic and position.
	rejectionsSummary := fmt.Sprintf(`SELECT
    toDate(rejected_time) AS day, provider_code, dataset, source, stage, rule_id, field, severity,
    count() AS failures,
    uniqExact(submission_id, source_topic, position) AS records,
    uniqExact(submission_id) AS submissions
FROM %s
GROUP BY day, provider_code, dataset, source, stage, rule_id, field, severity`,
		countedOnly(db, "rejected_time, provider_code, dataset, source, stage, rule_id, field, severity, submission_id, source_topic, position", TableRejections))

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
    (accepted + warned) / records AS valid_share,
    uniqExact(submission_id) AS submissions
FROM %s
GROUP BY provider_code, dataset, source, month`, countedOnly(db, "provider_code, dataset, source, received_time, outcome, submission_id", TableOutcomes))

	// ARRAY JOIN runs on the collapsed rows of the subquery, so a replaced
	// verdict's failures are not counted. records counts distinct records: a
	// record breaking one rule on one field twice counts once.
	dqRuleSummary := fmt.Sprintf(`SELECT
    provider_code, dataset, source, month, rule_id, field, severity,
    uniqExact(submission_id, position) AS records,
    uniqExact(submission_id) AS submissions
FROM (
    SELECT provider_code, dataset, source, toStartOfMonth(received_time) AS month, submission_id, position,
        failure_rule_id, failure_field, failure_severity
    FROM %s
)
ARRAY JOIN failure_rule_id AS rule_id, failure_field AS field, failure_severity AS severity
GROUP BY provider_code, dataset, source, month, rule_id, field, severity`,
		countedOnly(db, "provider_code, dataset, source, received_time, submission_id, position, failure_rule_id, failure_field, failure_severity", TableOutcomes))

	return []viewDef{
		// First: the views below read it.
		{name: ViewSubmissionStatus, columns: submissionStatusColumns, query: submissionStatusQuery(db)},
		{name: ViewActivityCurrent, columns: slices.Concat(actCols, activityViewExtra), query: activityCurrent},
		{
			name:    ViewRejectionsSummary,
			columns: []string{"day", "provider_code", "dataset", "source", "stage", "rule_id", "field", "severity", "failures", "records", "submissions"},
			query:   rejectionsSummary,
		},
		{
			name:    ViewDQSummary,
			columns: []string{"provider_code", "dataset", "source", "month", "records", "accepted", "warned", "rejected", "valid_share", "submissions"},
			query:   dqSummary,
		},
		{
			name:    ViewDQRuleSummary,
			columns: []string{"provider_code", "dataset", "source", "month", "rule_id", "field", "severity", "records", "submissions"},
			query:   dqRuleSummary,
		},
		smallNumbersView(db),
	}
}

// countedOnly is a FROM clause: the named columns of table (read under FINAL)
// for the rows the data-quality summaries count. A row counts unless its
// submission is known (it has a receipt) and is not current: still being
// received, abandoned, or superseded by a later submission with the same
// key. Rows of a submission without a receipt count: records produced
// straight to Kafka have none. (A row loaded before its submission's first
// receipt counts until that receipt is loaded, normally within the same
// second: ingest writes the receipt before any record.)
//
// ANY LEFT JOIN ... USING with aliased subqueries is the form 18.16 and
// current releases both accept; an unmatched row reads the right side's
// defaults (has_receipt = 0) on both.
func countedOnly(db, columns, table string) string {
	return fmt.Sprintf(`(SELECT %s FROM %s.%s FINAL) AS counted_rows
ANY LEFT JOIN (SELECT submission_id, 1 AS has_receipt, counted FROM %s.%s) AS counted_submissions USING (submission_id)
WHERE has_receipt = 0 OR counted = 1`, columns, db, table, db, ViewSubmissionStatus)
}

// ApplySchema creates dmic's database, tables and views when they are missing,
// and brings older ones up to date, so that every service can run it at start.
//
// It is idempotent and safe to run concurrently from several processes: every
// statement is IF NOT EXISTS, and a statement that fails because another
// process won the race is accepted once the object is seen to exist. Tables
// gain columns (ALTER TABLE ADD COLUMN for any that are missing, since 18.16
// has no ADD COLUMN IF NOT EXISTS); a table of an older layout (sorting key
// or partition) is rebuilt with the new one and its rows copied (migrateLayout); a
// view that lacks a column is dropped and created again. Nothing is ever
// dropped from a table, and the old table of a rebuild is kept.
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
	migrations := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (migration String, done_time DateTime DEFAULT now()) "+
		"ENGINE = ReplacingMergeTree() ORDER BY (migration)", db, TableSchemaMigrations)
	if err := execUntil(ctx, conn, migrations, tableExists(ctx, conn, db, TableSchemaMigrations)); err != nil {
		return fmt.Errorf("create table %s.%s: %w", db, TableSchemaMigrations, err)
	}
	for _, t := range tables() {
		if err := execUntil(ctx, conn, t.createSQL(db), tableExists(ctx, conn, db, t.name)); err != nil {
			return fmt.Errorf("create table %s.%s: %w", db, t.name, err)
		}
		if err := migrateLayout(ctx, conn, db, t); err != nil {
			return err
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

// ErrSchemaNotCurrent is returned (wrapped) by CheckSchema when the database
// lacks something this version needs: `dmicctl migrate` has not run since.
var ErrSchemaNotCurrent = errors.New("schema not current")

// CheckSchema reports whether database has every table (with its layout
// and columns) and every view (with its columns) that ApplySchema makes,
// naming everything missing at once. It only reads the system tables, so the
// writer, who may not change the schema, runs it at start: a load that is
// newer than the schema waits (NOT SERVING, with the reason) instead of
// failing on its first insert.
func CheckSchema(ctx context.Context, conn driver.Conn, database string) error {
	if err := validateDatabase(database); err != nil {
		return err
	}
	db := database
	var missing []string
	for _, t := range tables() {
		ok, err := exists(ctx, conn, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, t.name)
		if err != nil {
			return fmt.Errorf("check schema of %s: %w", db, err)
		}
		if !ok {
			missing = append(missing, "table "+t.name)
			continue
		}
		if key, err := hasLayout(ctx, conn, db, t); err != nil {
			return fmt.Errorf("check schema of %s: %w", db, err)
		} else if !key {
			missing = append(missing, fmt.Sprintf("table %s's layout (sorting key %s, partition %s)", t.name, strings.Join(t.orderBy, ", "), cmp.Or(t.partition, "none")))
		}
		have, err := columnNames(ctx, conn, db, t.name)
		if err != nil {
			return fmt.Errorf("check schema of %s: %w", db, err)
		}
		for _, c := range t.columns {
			if !have[c.name] {
				missing = append(missing, "column "+t.name+"."+c.name)
			}
		}
	}
	for _, v := range views(db) {
		have, err := columnNames(ctx, conn, db, v.name)
		if err != nil {
			return fmt.Errorf("check schema of %s: %w", db, err)
		}
		if len(have) == 0 {
			missing = append(missing, "view "+v.name)
			continue
		}
		for _, c := range v.columns {
			if !have[c] {
				missing = append(missing, "column "+v.name+"."+c)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: database %s lacks %s; run `dmicctl migrate` as %s",
			ErrSchemaNotCurrent, db, strings.Join(missing, ", "), chaccess.Migrator)
	}
	return nil
}

// TableSchemaMigrations records the data migrations ApplySchema has finished
// (one row each), so that none is done twice.
const TableSchemaMigrations = "schema_migrations"

// migrateLayout rebuilds t when its sorting key is not t.orderBy or its
// partition expression not t.partition: ClickHouse cannot change either in
// place (a sorting key: 18.16 not at all; current releases
// only by adding new columns at its end). It
//
//  1. creates <name>_layout<n>_new with the new layout, then swaps names in
//     one RENAME: the old table becomes <name>_layout<n-1>, the new one
//     <name>. Writers see one table or the other, never none; rows an older
//     load inserts after the swap land in the new table, keyed by the
//     server's DEFAULT columns like any other;
//  2. copies the old table's rows into the new one, one partition at a time
//     (current releases refuse an insert into more than 100 partitions),
//     then records the copy in schema_migrations. The old table is kept
//     (an operator drops it once satisfied); while it exists under its name,
//     a RENAME that would swap again fails.
//
// Several processes may run it at once: one RENAME wins, the others see the
// new sorting key; two may copy at once, and a copy cut short (a crash) is
// done again at the next start. Copying a row twice is harmless: rows with
// one key collapse.
func migrateLayout(ctx context.Context, conn driver.Conn, db string, t tableDef) error {
	if t.layout < 2 {
		return nil
	}
	old := fmt.Sprintf("%s_layout%d", t.name, t.layout-1)
	current, err := hasLayout(ctx, conn, db, t)
	if err != nil {
		return err
	}
	if !current {
		staging := fmt.Sprintf("%s_layout%d_new", t.name, t.layout)
		if err := execUntil(ctx, conn, t.createAsSQL(db, staging), tableExists(ctx, conn, db, staging)); err != nil {
			return fmt.Errorf("migrate %s.%s: create %s: %w", db, t.name, staging, err)
		}
		swap := fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s, %[1]s.%[4]s TO %[1]s.%[2]s", db, t.name, old, staging)
		if err := execUntil(ctx, conn, swap, func() (bool, error) { return hasLayout(ctx, conn, db, t) }); err != nil {
			return fmt.Errorf("migrate %s.%s to layout %d (sorting key %s, partition %s): %w", db, t.name, t.layout, strings.Join(t.orderBy, ", "), cmp.Or(t.partition, "none"), err)
		}
		// Another process won the swap: the staging table made here is empty
		// and no longer needed.
		if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", db, staging)); err != nil {
			return fmt.Errorf("migrate %s.%s: drop the unused %s: %w", db, t.name, staging, err)
		}
	}
	migration := "copy " + old + " into " + t.name
	pending, err := exists(ctx, conn, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, old)
	if err != nil || !pending {
		return err
	}
	if done, err := exists(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.%s WHERE migration = ?", db, TableSchemaMigrations), migration); err != nil || done {
		return err
	}
	if err := copyRows(ctx, conn, db, t, old); err != nil {
		return fmt.Errorf("migrate %s.%s: copy the rows of %s: %w", db, t.name, old, err)
	}
	if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s.%s (migration) SELECT ?", db, TableSchemaMigrations), migration); err != nil {
		return fmt.Errorf("migrate %s.%s: record the copy: %w", db, t.name, err)
	}
	return nil
}

// hasLayout reports whether t's table has t's sorting key and partition
// expression (as system.tables prints them: "a, b, c"; both columns are in
// 18.16's system.tables).
//
// 18.16 fails a read of system.tables.sorting_key when a table of the
// database is renamed meanwhile (another process migrating it): the read is
// tried again.
func hasLayout(ctx context.Context, conn driver.Conn, db string, t tableDef) (bool, error) {
	var key, partition string
	q := "SELECT sorting_key, partition_key FROM system.tables WHERE database = ? AND name = ?"
	var err error
	for attempt := 1; ; attempt++ {
		if err = conn.QueryRow(ctx, q, db, t.name).Scan(&key, &partition); err == nil {
			unspaced := func(s string) string { return strings.ReplaceAll(s, " ", "") }
			return unspaced(key) == strings.Join(t.orderBy, ",") && unspaced(partition) == unspaced(t.partition), nil
		}
		if attempt == 5 {
			return false, fmt.Errorf("layout of %s.%s: %w", db, t.name, err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("layout of %s.%s: %w (context: %w)", db, t.name, err, ctx.Err())
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// copyRows inserts every row of db.old into t, by the columns both have (its
// load time too), one partition of t at a time.
func copyRows(ctx context.Context, conn driver.Conn, db string, t tableDef, old string) error {
	have, err := columnNames(ctx, conn, db, old)
	if err != nil {
		return err
	}
	var cols []string
	for _, c := range t.columns {
		if have[c.name] {
			cols = append(cols, c.name)
		}
	}
	list := strings.Join(cols, ", ")
	insert := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s", db, t.name, list, list, db, old)
	if t.partition == "" {
		return conn.Exec(ctx, insert)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT toString(%s) FROM %s.%s", t.partition, db, old))
	if err != nil {
		return fmt.Errorf("partitions of %s.%s: %w", db, old, err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return fmt.Errorf("partitions of %s.%s: %w", db, old, err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("partitions of %s.%s: %w", db, old, err)
	}
	for _, p := range parts {
		if err := conn.Exec(ctx, insert+fmt.Sprintf(" WHERE toString(%s) = ?", t.partition), p); err != nil {
			return fmt.Errorf("partition %s: %w", p, err)
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
