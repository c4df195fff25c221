package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// A recipient database holds one data sharing agreement's data
// (docs/data-access.md): real tables, because on ClickHouse 18.16 a view
// needs read access to its source database and users.xml row filters are
// not applied, so the only boundary that holds on both 18.16 and current
// releases is a database of its own and a user limited to it.
const (
	// TableRecipientRows is one row per revision of a record in scope (or a
	// tombstone once it leaves the scope), ReplacingMergeTree(version).
	TableRecipientRows = "activity_rows"
	// ViewRecipientActivity is the current rows, deletes dropped.
	ViewRecipientActivity = "activity"
	// ViewRecipientSmallNumbers is the agreement's suppressed aggregate.
	ViewRecipientSmallNumbers = "activity_summary"
)

// recipientFixed are the columns every recipient table has: identity and
// version (the record key is the recipient's own keyed hash of dmic's), the
// data set, the commissioner (the row scope) and the activity date.
var recipientFixed = []string{"record_key", "version", "deleted", "dataset", "commissioner_code", "activity_date"}

// recipientNever are activity columns no agreement may allow: where a record
// sits in dmic's topics and submissions, dmic's own identifiers of it, and the
// key version of the analytics pseudonym.
var recipientNever = []string{"record_key", "version", "deleted", "submission_id", "raw_partition", "raw_offset",
	"line_number", "cds_unique_identifier", "match_key", "pseudonym_key_version", "loaded_at"}

// RecipientColumns are the columns of the analyst model an agreement may
// allow (besides the fixed ones every recipient gets). pseudo_nhs_number is
// the recipient's own pseudonym in its data.
func RecipientColumns() []string {
	var out []string
	for _, c := range activityColumns {
		if !slices.Contains(recipientNever, c.name) && !slices.Contains(recipientFixed, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

// Recipient is a recipient database: its name, the agreement's allowed
// columns and small-number threshold.
type Recipient struct {
	Database string
	Columns  []string
	K        int
}

func (r Recipient) columns() []column[activityRow] {
	var out []column[activityRow]
	for _, c := range activityColumns {
		if slices.Contains(recipientFixed, c.name) || slices.Contains(r.Columns, c.name) {
			out = append(out, c)
		}
	}
	return out
}

func (r Recipient) validate() error {
	if err := validateDatabase(r.Database); err != nil {
		return err
	}
	allowed := RecipientColumns()
	for _, c := range r.Columns {
		if !slices.Contains(allowed, c) {
			return fmt.Errorf("recipient %s: column %q may not be shared", r.Database, c)
		}
	}
	return nil
}

// EnsureRecipient makes the recipient's database, table and views (each
// CREATE … IF NOT EXISTS; the views are made again, so a new k or column set
// applies). A table whose columns are not the agreement's (a new version
// allowing other columns) is dropped and made again: its rows come back as
// records are loaded.
func EnsureRecipient(ctx context.Context, conn driver.Conn, r Recipient) error {
	if err := r.validate(); err != nil {
		return err
	}
	cols := r.columns()
	want := make([]string, len(cols))
	defs := make([]string, len(cols))
	for i, c := range cols {
		want[i], defs[i] = c.name, "    "+c.ddl()
	}
	stmts := []string{"CREATE DATABASE IF NOT EXISTS " + r.Database}
	have, err := tableColumns(ctx, conn, r.Database, TableRecipientRows)
	if err != nil {
		return err
	}
	if len(have) > 0 && !slices.Equal(have, want) {
		stmts = append(stmts, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", r.Database, TableRecipientRows))
	}
	stmts = append(stmts,
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(version) ORDER BY record_key",
			r.Database, TableRecipientRows, strings.Join(defs, ",\n")),
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", r.Database, ViewRecipientActivity),
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT %s FROM %s.%s FINAL WHERE deleted = 0",
			r.Database, ViewRecipientActivity, strings.Join(slices.DeleteFunc(slices.Clone(want), func(s string) bool {
				return s == "version" || s == "deleted"
			}), ", "), r.Database, TableRecipientRows),
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", r.Database, ViewRecipientSmallNumbers),
		fmt.Sprintf("CREATE VIEW %s.%s AS %s", r.Database, ViewRecipientSmallNumbers, recipientSummaryQuery(r)),
	)
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("recipient %s: %w", r.Database, err)
		}
	}
	return nil
}

// recipientSummaryQuery is the recipient's aggregate: activity by data set,
// commissioner and month, with counts below the agreement's k suppressed
// (NULL), and secondary suppression: where exactly one cell of a
// commissioner's month is suppressed, the commissioner-month total and the
// other cells would give it away, so the smallest other cell of that
// commissioner and month is suppressed too. Both rules run in ClickHouse SQL
// that 18.16 and current releases read alike (no window functions).
func recipientSummaryQuery(r Recipient) string {
	return fmt.Sprintf(`SELECT dataset, commissioner_code, month, records,
    if(records < %[1]d OR (primary_in_group = 1 AND records = min_other AND records >= %[1]d AND dataset = min_other_dataset), NULL, records) AS released_records
FROM (
    SELECT dataset, commissioner_code, month, records, primary_in_group, min_other, min_other_dataset
    FROM (
        SELECT dataset, commissioner_code, toStartOfMonth(activity_date) AS month, toInt64(count()) AS records
        FROM %[2]s.%[3]s FINAL WHERE deleted = 0
        GROUP BY dataset, commissioner_code, month
    ) ANY LEFT JOIN (
        SELECT commissioner_code, month, toUInt8(countIf(records < %[1]d)) AS primary_in_group,
            minIf(records, records >= %[1]d) AS min_other,
            argMinIf(dataset, records, records >= %[1]d) AS min_other_dataset
        FROM (
            SELECT dataset, commissioner_code, toStartOfMonth(activity_date) AS month, toInt64(count()) AS records
            FROM %[2]s.%[3]s FINAL WHERE deleted = 0
            GROUP BY dataset, commissioner_code, month
        )
        GROUP BY commissioner_code, month
    ) USING (commissioner_code, month)
)`, r.K, r.Database, TableRecipientRows)
}

// tableColumns are a table's columns in order; none if it does not exist.
func tableColumns(ctx context.Context, conn driver.Conn, db, table string) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ? ORDER BY position", db, table)
	if err != nil {
		// 18.16's system.columns has no position column.
		rows, err = conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", db, table)
		if err != nil {
			return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
		}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// DropRecipient drops a recipient database with its data.
func DropRecipient(ctx context.Context, conn driver.Conn, db string) error {
	if err := validateDatabase(db); err != nil {
		return err
	}
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return fmt.Errorf("drop recipient %s: %w", db, err)
	}
	return nil
}

// WriteRecipient inserts rows into a recipient's table: each already made
// the recipient's (ForRecipient, Tombstone). The rows hold every activity
// column; the recipient's table gets those of its agreement.
func WriteRecipient(ctx context.Context, conn driver.Conn, r Recipient, rows []PackedActivity) error {
	if len(rows) == 0 {
		return nil
	}
	if err := r.validate(); err != nil {
		return err
	}
	return insertPacked(ctx, conn, r.Database, nil, TableRecipientRows, activityColumns, r.sends,
		len(rows), func(i int) []byte { return rows[i].b })
}

// sends reports whether the recipient's table has column c.
func (r Recipient) sends(c column[activityRow]) bool {
	return slices.Contains(recipientFixed, c.name) || slices.Contains(r.Columns, c.name)
}

// Facts are what an agreement's scope is judged by, as the activity table
// has them: the data set, the commissioner assigned by CAM, the activity
// date (YYYY-MM-DD) and whether the row is a deletion.
func (p PackedActivity) Facts() (dataset, commissioner, date string, deleted bool) {
	d := p.date()
	if !d.IsZero() {
		date = d.Format(time.DateOnly)
	}
	if v, _, err := activityLayout.value(p.b, "deleted"); err == nil {
		n, _, _ := unpackUvarint(v)
		deleted = n != 0
	}
	return activityLayout.str(p.b, "dataset"), activityLayout.str(p.b, "commissioner_code"), date, deleted
}

// RecordKey is the row's record key; PseudoNHSNumber its analytics
// pseudonym.
func (p PackedActivity) RecordKey() string { return activityLayout.str(p.b, "record_key") }

// PseudoNHSNumber is the row's analytics pseudonym ("" without one).
func (p PackedActivity) PseudoNHSNumber() string { return activityLayout.str(p.b, "pseudo_nhs_number") }

// ForRecipient is the recipient's version of the row: its record key and
// pseudonym the recipient's own (keyed hashes that load makes), and no
// pseudonym key version, which is dmic's.
func (p PackedActivity) ForRecipient(recordKey, pseudonym string) (PackedActivity, error) {
	b, err := activityLayout.withStrings(p.b, map[string]string{
		"record_key": recordKey, "pseudo_nhs_number": pseudonym, "pseudonym_key_version": ""})
	return PackedActivity{b}, err
}

// Tombstone is the row that takes p out of a recipient's data: the
// recipient's record key, p's version and data set, deleted, and nothing
// else; now dates it, as it does a record without dates.
func (p PackedActivity) Tombstone(recordKey string, now time.Time) (PackedActivity, error) {
	v, _, err := activityLayout.value(p.b, "version")
	if err != nil {
		return PackedActivity{}, err
	}
	version, _, err := unpackUvarint(v)
	if err != nil {
		return PackedActivity{}, err
	}
	t := PackActivity(&dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: recordKey, Version: version},
		Activity: &dmicv1.DeidentifiedActivity{UpdateType: dmicv1.UpdateType_UPDATE_TYPE_DELETE},
	}, now)
	b, err := activityLayout.withStrings(t.b, map[string]string{"dataset": activityLayout.str(p.b, "dataset")})
	return PackedActivity{b}, err
}
