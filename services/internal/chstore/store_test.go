package chstore

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

// TestStore runs against a real ClickHouse (chservertest.Server): a private
// 18.16 on the development machines, or the server at CLICKHOUSE_ADDR when
// DMIC_CLICKHOUSE_SECRETS lets its migrator in. Each subtest has its own
// database.
func TestStore(t *testing.T) {
	srv := chservertest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, DefaultDatabase))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { conn.Close() }) // before the server stops (cleanups run last-in first-out)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse %s at %s", version, srv.Addr)

	n := 0
	fresh := func(t *testing.T) (string, *Writer) {
		t.Helper()
		n++
		db := fmt.Sprintf("dmic_test_%d_%d", time.Now().UnixNano()%1e6, n)
		if err := ApplySchema(ctx, conn, db); err != nil {
			t.Fatalf("ApplySchema: %v", err)
		}
		t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
		return db, NewWriter(conn, db)
	}

	t.Run("ApplySchema is idempotent and safe concurrently", func(t *testing.T) {
		db, _ := fresh(t)
		if err := ApplySchema(ctx, conn, db); err != nil {
			t.Fatalf("second ApplySchema: %v", err)
		}
		other := fmt.Sprintf("dmic_test_conc_%d", time.Now().UnixNano()%1e6)
		t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+other) })
		applyConcurrently(ctx, t, srv, other, 6)
		for _, name := range []string{TableActivity, TableRejections, TableReconciliation, TableOutcomes, TableSubmissions, TableAudit,
			ViewActivityCurrent, ViewRejectionsSummary, ViewDQSummary, ViewDQRuleSummary, ViewSmallNumbers, ViewSubmissionStatus} {
			if c := count(t, conn, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", other, name); c != 1 {
				t.Errorf("%s.%s missing after concurrent ApplySchema", other, name)
			}
		}
	})

	t.Run("a batch of several blocks is one INSERT", func(t *testing.T) {
		db, _ := fresh(t)
		var inserts []int
		w := NewWriter(conn, db, WithInsertObserver(func(table string, rows int) {
			if table == TableActivity {
				inserts = append(inserts, rows)
			}
		}))
		recs := make([]*dmicv1.DeidentifiedRecord, 2*blockRows+7)
		for i := range recs {
			recs[i] = apcRecord(fmt.Sprintf("blk-%05d", i), 1)
		}
		if err := w.WriteActivity(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if len(inserts) != 1 || inserts[0] != len(recs) {
			t.Errorf("inserts %v, want one of %d rows", inserts, len(recs))
		}
		if c := count(t, conn, "SELECT uniqExact(record_key) FROM "+db+".activity WHERE record_key LIKE 'blk-%'"); c != uint64(len(recs)) {
			t.Errorf("%d records stored, want %d", c, len(recs))
		}
	})

	t.Run("ApplySchema upgrades older tables and views", func(t *testing.T) {
		db := fmt.Sprintf("dmic_test_old_%d", time.Now().UnixNano()%1e6)
		t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
		for _, q := range []string{
			"CREATE DATABASE " + db,
			"CREATE TABLE " + db + ".activity (record_key String, version UInt64, deleted UInt8, activity_date Date, match_key String) " +
				"ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(activity_date) ORDER BY (record_key)",
			"INSERT INTO " + db + ".activity (record_key, version, deleted, activity_date, match_key) SELECT 'old', 1, 0, toDate('2024-05-01'), ''",
			"CREATE VIEW " + db + ".activity_current AS SELECT record_key FROM " + db + ".activity FINAL WHERE deleted = 0",
		} {
			if err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := ApplySchema(ctx, conn, db); err != nil {
			t.Fatalf("ApplySchema over an older schema: %v", err)
		}
		for _, tb := range []string{TableActivity, ViewActivityCurrent} {
			for _, col := range []string{"hrg_code", "imd_decile"} {
				if c := count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", db, tb, col); c != 1 {
					t.Errorf("%s has no %s after the upgrade", tb, col)
				}
			}
		}
		w := NewWriter(conn, db)
		if err := w.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{apcRecord("new", 1)}); err != nil {
			t.Fatalf("write after upgrade: %v", err)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current"); c != 2 {
			t.Errorf("activity_current after upgrade has %d rows, want the old and the new", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+"."+ViewSmallNumbers); c != 2 {
			rows := firstColumn[string](t, conn, "SELECT concat(source, ' ', toString(month), ' ', toString(records)) FROM "+db+"."+ViewSmallNumbers)
			t.Errorf("small_numbers after upgrade has %d rows, want the old and the new record's combinations: %q", c, rows)
		}
	})

	t.Run("a replayed batch is one row", func(t *testing.T) {
		db, w := fresh(t)
		batch := []*dmicv1.DeidentifiedRecord{apcRecord("A1", 100), outpatientRecord("O1", 100), emergencyRecord("E1", 100), localFlowRecord("L1", 100)}
		for range 2 {
			if err := w.WriteActivity(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity"); c != 8 {
			t.Fatalf("raw activity rows = %d, want 8 (two inserts; dedup happens under FINAL)", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity FINAL"); c != 4 {
			t.Errorf("activity FINAL = %d rows, want 4", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current"); c != 4 {
			t.Errorf("activity_current = %d rows, want 4", c)
		}
		ds := firstColumn[string](t, conn, "SELECT dataset FROM "+db+".activity_current ORDER BY dataset")
		if !slices.Equal(ds, []string{"apc", "emergency_care", "local_flow", "outpatient"}) {
			t.Errorf("datasets = %v", ds)
		}
	})

	t.Run("a higher version replaces, a late replay of a lower one does not", func(t *testing.T) {
		db, w := fresh(t)
		v1, v2 := apcRecord("A1", 100), apcRecord("A1", 200)
		v2.Activity.GetApc().HrgCode = "EB10B"
		for _, b := range [][]*dmicv1.DeidentifiedRecord{{v1}, {v2}, {v1}} {
			if err := w.WriteActivity(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		var hrg string
		var version uint64
		if err := conn.QueryRow(ctx, "SELECT hrg_code, version FROM "+db+".activity_current WHERE record_key = ?", "A1").Scan(&hrg, &version); err != nil {
			t.Fatal(err)
		}
		if hrg != "EB10B" || version != 200 {
			t.Errorf("current = %s v%d, want EB10B v200", hrg, version)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current"); c != 1 {
			t.Errorf("activity_current = %d rows, want 1", c)
		}
	})

	t.Run("a revision that moves month still replaces", func(t *testing.T) {
		db, w := fresh(t)
		v1, v2 := apcRecord("A1", 100), apcRecord("A1", 200)
		v2.Activity.ActivityDate = "2025-06-30"
		for _, b := range [][]*dmicv1.DeidentifiedRecord{{v1}, {v2}} {
			if err := w.WriteActivity(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		// Force merges: a background merge never crosses partitions, so only FINAL collapses these.
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+".activity FINAL"); err != nil {
			t.Logf("OPTIMIZE: %v", err)
		}
		dates := firstColumn[time.Time](t, conn, "SELECT activity_date FROM "+db+".activity_current WHERE record_key = 'A1'")
		if len(dates) != 1 || dates[0].Format("2006-01-02") != "2025-06-30" {
			t.Errorf("activity_current dates = %v, want only 2025-06-30", dates)
		}
	})

	t.Run("a delete hides the record", func(t *testing.T) {
		db, w := fresh(t)
		keep, v1, del := apcRecord("KEEP", 100), apcRecord("A1", 100), apcRecord("A1", 200)
		del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
		del.Activity.ActivityDate = "2025-05-01" // a tombstone in another month must still hide it
		for _, b := range [][]*dmicv1.DeidentifiedRecord{{keep, v1}, {del}, {v1}} {
			if err := w.WriteActivity(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current WHERE record_key = 'A1'"); c != 0 {
			t.Errorf("deleted record still in activity_current (%d rows)", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity FINAL WHERE record_key = 'A1' AND deleted = 1"); c != 1 {
			t.Errorf("tombstone rows under FINAL = %d, want 1", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current"); c != 1 {
			t.Errorf("activity_current = %d rows, want 1 (KEEP)", c)
		}
	})

	t.Run("a record without an activity date is stored at its received date", func(t *testing.T) {
		db, w := fresh(t)
		r := apcRecord("NODATE", 1)
		r.Activity.ActivityDate = ""
		r.Activity.GetApc().EndDateEpisode = "not a date"
		r.Activity.GetApc().StartDateEpisode = ""
		if err := w.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{r}); err != nil {
			t.Fatal(err)
		}
		var d time.Time
		var src string
		if err := conn.QueryRow(ctx, "SELECT activity_date, activity_date_source FROM "+db+".activity_current").Scan(&d, &src); err != nil {
			t.Fatal(err)
		}
		if d.Format("2006-01-02") != "2025-04-02" || src != "received" {
			t.Errorf("activity_date = %s (%s), want 2025-04-02 (received)", d.Format("2006-01-02"), src)
		}
	})

	t.Run("a batch over many months is written", func(t *testing.T) {
		db, w := fresh(t)
		var batch []*dmicv1.DeidentifiedRecord
		start := time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)
		// More months than one INSERT may touch on current ClickHouse (100);
		// WriteActivity splits the batch.
		for i := range 101 {
			r := apcRecord(fmt.Sprintf("M%03d", i), 1)
			r.Activity.ActivityDate = start.AddDate(0, i, 0).Format("2006-01-02")
			batch = append(batch, r)
		}
		if err := w.WriteActivity(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".activity_current"); c != 101 {
			t.Errorf("activity_current = %d rows, want 101", c)
		}
	})

	t.Run("rejections dedupe on redelivery", func(t *testing.T) {
		db, w := fresh(t)
		dls := []*dmicv1.DeadLetter{
			deadLetter(10, failure("NHS_NUMBER_CHECK_DIGIT", "nhs_number"), failure("DATE_FORMAT", "person_birth_date")),
			deadLetter(11),
		}
		for range 2 {
			if err := w.WriteRejections(ctx, dls); err != nil {
				t.Fatal(err)
			}
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".rejections FINAL"); c != 3 {
			t.Errorf("rejections FINAL = %d, want 3", c)
		}
		if c := count(t, conn, "SELECT count() FROM "+db+".rejections FINAL WHERE rule_id = 'UNKNOWN' AND source_offset = 11"); c != 1 {
			t.Errorf("a dead letter without failures must be one UNKNOWN row, got %d", c)
		}
		var failures, records uint64
		if err := conn.QueryRow(ctx, "SELECT sum(failures), sum(records) FROM "+db+".rejections_summary WHERE provider_code = 'RR8' AND day = toDate('2025-04-02')").Scan(&failures, &records); err != nil {
			t.Fatal(err)
		}
		if failures != 3 || records != 3 {
			// records counts distinct rejected records per (rule, field) group: 1+1+1.
			t.Errorf("rejections_summary: failures %d records %d, want 3 and 3", failures, records)
		}
	})

	t.Run("reconciliation keeps the highest sequence and shows in activity_current", func(t *testing.T) {
		db, w := fresh(t)
		a, b := apcRecord("A1", 1), apcRecord("B1", 1)
		if err := w.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{a, b}); err != nil {
			t.Fatal(err)
		}
		rs := []*dmicv1.ReconciliationResult{
			reconciliation(a.MatchKey, 1, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY),
			reconciliation(a.MatchKey, 3, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED, "hrg_code", "primary_diagnosis_icd"),
		}
		if err := w.WriteReconciliation(ctx, rs); err != nil {
			t.Fatal(err)
		}
		// A late, lower sequence arrives after the higher one.
		if err := w.WriteReconciliation(ctx, []*dmicv1.ReconciliationResult{
			reconciliation(a.MatchKey, 2, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED),
		}); err != nil {
			t.Fatal(err)
		}
		var status string
		var fields []string
		if err := conn.QueryRow(ctx, "SELECT status, differing_fields FROM "+db+".reconciliation FINAL WHERE match_key = ?", a.MatchKey).Scan(&status, &fields); err != nil {
			t.Fatal(err)
		}
		if status != "mismatched" || !slices.Equal(fields, []string{"hrg_code", "primary_diagnosis_icd"}) {
			t.Errorf("reconciliation = %s %v, want mismatched [hrg_code primary_diagnosis_icd]", status, fields)
		}
		type joined struct {
			Key    string   `ch:"record_key"`
			Status string   `ch:"reconciliation_status"`
			Fields []string `ch:"reconciliation_differing_fields"`
		}
		var got []joined
		if err := conn.Select(ctx, &got, "SELECT record_key, reconciliation_status, reconciliation_differing_fields FROM "+db+".activity_current ORDER BY record_key"); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Status != "mismatched" || len(got[0].Fields) != 2 || got[1].Status != "" {
			t.Errorf("activity_current join = %+v, want A1 mismatched and B1 without a status", got)
		}
	})

	t.Run("no identifier reaches any column", func(t *testing.T) {
		db, w := fresh(t)
		recs := []*dmicv1.DeidentifiedRecord{apcRecord("A1", 1), outpatientRecord("O1", 1), emergencyRecord("E1", 1), localFlowRecord("L1", 1)}
		if err := w.WriteActivity(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteRejections(ctx, []*dmicv1.DeadLetter{deadLetter(1, failure("NHS_NUMBER_CHECK_DIGIT", "nhs_number")), deadLetter(2)}); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteReconciliation(ctx, []*dmicv1.ReconciliationResult{reconciliation(recs[0].MatchKey, 1, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range dqreporttest.Cases() {
			for _, r := range c.Receipts {
				if err := w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{r}); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range c.Batches {
				if err := w.WriteOutcomes(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		type col struct {
			Table string `ch:"table"`
			Name  string `ch:"name"`
			Type  string `ch:"type"`
		}
		var cols []col
		if err := conn.Select(ctx, &cols, "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name", db); err != nil {
			t.Fatal(err)
		}
		scanned, values := 0, 0
		for _, c := range cols {
			if !strings.Contains(c.Type, "String") {
				continue
			}
			scanned++
			q := fmt.Sprintf("SELECT DISTINCT toString(%s) FROM %s.%s", c.Name, db, c.Table)
			if strings.HasPrefix(c.Type, "Array") {
				q = fmt.Sprintf("SELECT DISTINCT arrayJoin(%s) FROM %s.%s", c.Name, db, c.Table)
			}
			vals := firstColumn[string](t, conn, q)
			for _, v := range vals {
				values++
				if what := identifierIn(v); what != "" {
					t.Errorf("%s.%s holds something that looks like %s: %q", c.Table, c.Name, what, v)
				}
			}
		}
		if scanned < 80 || values == 0 {
			t.Errorf("scanned %d string columns and %d values: the guard is not looking", scanned, values)
		}
	})
}

var (
	// A 10-digit NHS number, alone or written 3-3-4, not part of a longer token
	// (a hex pseudonym holds digit runs but no token boundary).
	nhsNumberRE = regexp.MustCompile(`(^|[^0-9A-Za-z])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}([^0-9A-Za-z]|$)`)
	// A full UK postcode (a postcode sector such as "LS1 4" is allowed).
	postcodeRE = regexp.MustCompile(`(?i)(^|[^0-9A-Za-z])[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}([^0-9A-Za-z]|$)`)
	// A full date of birth: the fixtures' patient was born 1957-11-02.
	birthDateRE = regexp.MustCompile(`1957-11-02`)
)

// applyConcurrently runs ApplySchema on db n times at once, on separate
// connections, like services starting together, and fails t for each error.
func applyConcurrently(ctx context.Context, t *testing.T, srv chserver.Server, db string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, db))
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			errs[i] = ApplySchema(ctx, c, db)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent ApplySchema %d on %s: %v", i, db, err)
		}
	}
}

func identifierIn(s string) string {
	switch {
	case nhsNumberRE.MatchString(s):
		return "an NHS number"
	case postcodeRE.MatchString(s):
		return "a postcode"
	case birthDateRE.MatchString(s):
		return "a date of birth"
	}
	return ""
}

func TestIdentifierDetector(t *testing.T) {
	for _, s := range []string{"9434765919", "nhs 943 476 5919.", "943-476-5919", "LS1 4AP", "sw1a1aa", "at M1 1AE today", "x 1957-11-02"} {
		if identifierIn(s) == "" {
			t.Errorf("detector misses %q", s)
		}
	}
	for _, s := range []string{
		"LS1 4", "E01011365", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "RR8|apc|BRR8A1",
		"mk|A1", "EB10A", "I21.9", "21522001", "2025-03-14", "Sub-ICB (Practice Mapped)", "123456789", "12345678901",
	} {
		if what := identifierIn(s); what != "" {
			t.Errorf("detector flags %q as %s", s, what)
		}
	}
}

// firstColumn returns the first column of q's result.
func firstColumn[V any](t *testing.T, conn driver.Conn, q string, args ...any) []V {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []V
	for rows.Next() {
		var v V
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// BenchmarkWriteActivity measures one WriteActivity of 10k rows against a real
// server (ns/op is per batch of 10k).
func BenchmarkWriteActivity(b *testing.B) {
	srv := chservertest.Server(b)
	ctx := context.Background()
	conn, err := Open(ctx, testConfig(b, srv, chaccess.Migrator, "dmic_bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS dmic_bench")
		conn.Close()
	})
	if err := ApplySchema(ctx, conn, "dmic_bench"); err != nil {
		b.Fatal(err)
	}
	w := NewWriter(conn, "dmic_bench")
	const batchSize = 10_000
	batch := make([]*dmicv1.DeidentifiedRecord, batchSize)
	for i := range batch {
		switch i % 4 {
		case 0:
			batch[i] = apcRecord(fmt.Sprintf("RR8|apc|%08d", i), uint64(i))
		case 1:
			batch[i] = outpatientRecord(fmt.Sprintf("RR8|outpatient|%08d", i), uint64(i))
		case 2:
			batch[i] = emergencyRecord(fmt.Sprintf("RR8|emergency_care|%08d", i), uint64(i))
		default:
			batch[i] = localFlowRecord(fmt.Sprintf("RR8|local_flow|%08d", i), uint64(i))
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := w.WriteActivity(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batchSize), "ns/row")
}
