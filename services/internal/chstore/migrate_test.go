package chstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// layout1 is the DDL of the tables whose layout changed, as the previous
// version created them, and rows of a submission that was sent twice (each
// rejected record twice, from two raw offsets), across two months; and
// activity by month, with a record revised into another year.
var layout1 = []string{
	`CREATE TABLE %[1]s.activity (record_key String, version UInt64, deleted UInt8, activity_date Date, match_key String)
	ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(activity_date) ORDER BY (record_key)`,
	`INSERT INTO %[1]s.activity (record_key, version, deleted, activity_date, match_key)
	SELECT 'a', 1, 0, toDate('2024-12-31'), 'ma' UNION ALL
	SELECT 'a', 2, 0, toDate('2025-01-02'), 'ma' UNION ALL
	SELECT 'b', 1, 0, toDate('2025-03-01'), 'mb'`,
	`CREATE TABLE %[1]s.rejections (source_topic String, source_partition Int32, source_offset Int64, stage String,
	submission_id String, record_id String, line_number Int64, record_key String, dataset String, source String,
	submitter_org_code String, provider_code String, rule_id String, field String, severity String, message String,
	rejected_time DateTime, received_time DateTime, loaded_at DateTime DEFAULT now())
	ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(rejected_time)
	ORDER BY (source_topic, source_partition, source_offset, submission_id, line_number, record_id, stage, rule_id, field)`,
	`INSERT INTO %[1]s.rejections (source_topic, source_partition, source_offset, stage, submission_id, line_number, provider_code,
	rule_id, field, rejected_time, loaded_at)
	SELECT 'dmic.raw', 1, 101, 'validate', 'sub-old', 1, 'RR8', 'NHS-002', 'nhs_number', toDateTime('2025-03-31 23:00:00'), toDateTime('2025-04-01 00:00:00') UNION ALL
	SELECT 'dmic.raw', 1, 201, 'validate', 'sub-old', 1, 'RR8', 'NHS-002', 'nhs_number', toDateTime('2025-04-01 01:00:00'), toDateTime('2025-04-01 00:00:00') UNION ALL
	SELECT 'dmic.raw', 2, 102, 'validate', 'sub-old', 2, 'RR8', 'PC-001', 'postcode_of_usual_address', toDateTime('2025-03-31 23:00:00'), toDateTime('2025-04-01 00:00:00') UNION ALL
	SELECT 'dmic.raw', 2, 202, 'validate', 'sub-old', 2, 'RR8', 'PC-001', 'postcode_of_usual_address', toDateTime('2025-04-01 01:00:00'), toDateTime('2025-04-01 00:00:00') UNION ALL
	SELECT 'dmic.raw', 3, 7, 'validate', '', 0, 'RR8', 'NHS-002', 'nhs_number', toDateTime('2025-04-01 01:00:00'), toDateTime('2025-04-01 00:00:00') UNION ALL
	SELECT 'dmic.assigned', 3, 7, 'load', '', 0, '', 'STAGE-DECODE', '', toDateTime('2025-04-01 01:00:00'), toDateTime('2025-04-01 00:00:00')`,
	`CREATE TABLE %[1]s.submissions (submission_id String, dataset String, source String, submitter_org_code String,
	received_time DateTime, records Int64, refused Int64, transport String, loaded_at DateTime DEFAULT now())
	ENGINE = ReplacingMergeTree() ORDER BY (submission_id)`,
	`INSERT INTO %[1]s.submissions (submission_id, dataset, source, submitter_org_code, received_time, records, refused, transport)
	SELECT 'sub-old', 'apc', 'provider', 'RR8', toDateTime('2025-03-31 22:59:00'), 2, 0, 'http'`,
	`CREATE VIEW %[1]s.rejections_summary AS SELECT toDate(rejected_time) AS day, count() AS failures FROM %[1]s.rejections FINAL GROUP BY day`,
}

// TestLayoutMigration: a database of the previous version gets the new
// sorting keys, from several services starting at once, with every row kept
// and a resend's duplicates collapsed; the old tables are kept, and the copy
// is recorded so that it is not done again.
func TestLayoutMigration(t *testing.T) {
	srv := chservertest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	db := fmt.Sprintf("dmic_test_layout_%d", time.Now().UnixNano()%1e6)
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	for _, q := range layout1 {
		if err := conn.Exec(ctx, fmt.Sprintf(q, db)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	applyConcurrently(ctx, t, srv, db, 4)

	for _, tb := range tables() {
		if ok, err := hasLayout(ctx, conn, db, tb); err != nil || !ok {
			t.Errorf("%s: new sorting key %v, %v", tb.name, ok, err)
		}
	}
	tablesNow := firstColumn[string](t, conn, "SELECT name FROM system.tables WHERE database = ? AND name LIKE '%layout%' ORDER BY name", db)
	if fmt.Sprint(tablesNow) != "[activity_layout1 rejections_layout1 submissions_layout1]" {
		t.Errorf("tables of the migration = %v, want the three old tables and no staging table", tablesNow)
	}
	done := firstColumn[string](t, conn, "SELECT migration FROM "+db+".schema_migrations FINAL ORDER BY migration")
	if fmt.Sprint(done) != "[copy activity_layout1 into activity copy rejections_layout1 into rejections copy submissions_layout1 into submissions]" {
		t.Errorf("migrations recorded = %q, want the three copies", done)
	}
	if p := firstColumn[string](t, conn, "SELECT partition_key FROM system.tables WHERE database = ? AND name = ?", db, TableActivity); fmt.Sprint(p) != "[toYear(activity_date)]" {
		t.Errorf("activity's partition key = %q, want by year", p)
	}
	for _, c := range []struct {
		what, query string
		want        uint64
	}{
		{"rows kept in the old table", "SELECT count() FROM " + db + ".rejections_layout1", 6},
		// sub-old's two records once each (the resend collapsed), and the two
		// rows without a submission, apart: same partition and offset, other topics.
		{"rows under FINAL", "SELECT count() FROM " + db + ".rejections FINAL", 4},
		{"sub-old's rows, by line", "SELECT count() FROM " + db + ".rejections FINAL WHERE submission_id = 'sub-old' AND position IN (1, 2)", 2},
		{"records in rejections_summary", "SELECT sum(records) FROM " + db + "." + ViewRejectionsSummary, 4},
		// Every version copied (the services that started together may each
		// have copied them: they collapse).
		{"activity versions copied", "SELECT uniqExact(record_key, version) FROM " + db + ".activity", 3},
		// The revision into another year replaces the first version under
		// FINAL (across partitions), in the view too.
		{"activity_current", "SELECT count() FROM " + db + "." + ViewActivityCurrent, 2},
		{"a's version", "SELECT max(version) FROM " + db + "." + ViewActivityCurrent + " WHERE record_key = 'a'", 2},
		// The copies keep their load time.
		{"copied rows loaded before the copy", "SELECT countIf(loaded_at != toDateTime('2025-04-01 00:00:00')) FROM " + db + ".rejections", 0},
	} {
		if n := count(t, conn, c.query); n != c.want {
			t.Errorf("%s: %d, want %d", c.what, n, c.want)
		}
	}
	// The receipt from before states is a finished submission.
	r, found, err := SubmissionReport(ctx, conn, db, "sub-old", 10)
	if err != nil || !found || r.GetState() != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED || r.GetRecords() != 2 || r.GetAttempts() != 1 {
		t.Errorf("report of the old submission = %v, %v, %v; want received, 2 records, 1 attempt", r, found, err)
	}

	// Once migrated, nothing more happens (the services that started together
	// may each have copied the rows: they collapsed), and writes go to the
	// new tables.
	before := count(t, conn, "SELECT count() FROM "+db+".rejections")
	if err := ApplySchema(ctx, conn, db); err != nil {
		t.Fatalf("ApplySchema after the migration: %v", err)
	}
	w := NewWriter(conn, db)
	c := suiteCase(t, "an interrupted attempt and its resend count once")
	writeCase(ctx, t, w, c)
	if got, _, err := SubmissionReport(ctx, conn, db, c.SubmissionID, c.Limit); err != nil || got.GetAttempts() != 2 || !got.GetComplete() {
		t.Errorf("report after the migration = %v, %v", got, err)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".rejections"); n != before {
		t.Errorf("rejections holds %d rows after another ApplySchema, %d before: copied again", n, before)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".submissions_layout1"); n != 1 {
		t.Errorf("the old submissions table holds %d rows, want 1", n)
	}
}
