package chstore

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

func TestActivityDate(t *testing.T) {
	now := time.Date(2026, 1, 9, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		mutate     func(r *dmicv1.DeidentifiedRecord)
		wantDate   string
		wantSource string
	}{
		{"activity date", func(*dmicv1.DeidentifiedRecord) {}, "2025-03-14", dateFromRecord},
		{"empty activity date falls back to APC end of episode", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = ""
			r.Activity.GetApc().EndDateEpisode = "2025-03-12"
		}, "2025-03-12", dateFromRecord},
		{"APC without end date uses start of episode", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = ""
			r.Activity.GetApc().EndDateEpisode = ""
		}, "2025-03-10", dateFromRecord},
		{"unparsable dates use the received date", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = "14/03/2025"
			r.Activity.GetApc().EndDateEpisode = "2025-02-30"
			r.Activity.GetApc().StartDateEpisode = ""
		}, "2025-04-02", dateFromReceived},
		{"a date before 1970 is not stored as 1970", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = "1900-01-01"
			r.Activity.Activity = nil
		}, "2025-04-02", dateFromReceived},
		{"1970-01-01 is the zero date, never an activity date", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = "1970-01-01"
			r.Activity.Activity = nil
		}, "2025-04-02", dateFromReceived},
		{"no dates at all use the load date", func(r *dmicv1.DeidentifiedRecord) {
			r.Activity.ActivityDate = ""
			r.Activity.Activity = nil
			r.Header.ReceivedTime = nil
		}, "2026-01-09", dateFromLoaded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := apcRecord("K1", 1)
			tc.mutate(rec)
			row := newActivityRow(rec, now)
			if got := row.date.Format("2006-01-02"); got != tc.wantDate || row.dateSource != tc.wantSource {
				t.Errorf("activity date = %s (%s), want %s (%s)", got, row.dateSource, tc.wantDate, tc.wantSource)
			}
		})
	}
}

func TestDetailOf(t *testing.T) {
	for _, tc := range []struct {
		rec                              *dmicv1.DeidentifiedRecord
		dataset, cdsType, hrg, startDate string
		pricePence                       int64
	}{
		{apcRecord("A", 1), "apc", "130", "EB10A", "2025-03-10", 0},
		{outpatientRecord("O", 1), "outpatient", "020", "WF01B", "2025-02-03", 0},
		{emergencyRecord("E", 1), "emergency_care", "011", "VB07Z", "2025-01-20", 0},
		{localFlowRecord("L", 1), "local_flow", "", "WF01A", "2024-12-05", 12345},
	} {
		d := detailOf(tc.rec.GetActivity())
		if d.dataset != tc.dataset || d.cdsType != tc.cdsType || d.hrg != tc.hrg || d.pricePence != tc.pricePence {
			t.Errorf("%s: got dataset %q cds_type %q hrg %q price %d", tc.dataset, d.dataset, d.cdsType, d.hrg, d.pricePence)
		}
		if d.startDate == nil || d.startDate.Format("2006-01-02") != tc.startDate {
			t.Errorf("%s: start_date = %v, want %s", tc.dataset, d.startDate, tc.startDate)
		}
	}
	// The header's dataset wins; the oneof only fills in when the header has none.
	r := apcRecord("X", 1)
	r.Header.Dataset = dmicv1.Dataset_DATASET_UNSPECIFIED
	row := newActivityRow(r, time.Now())
	if got := row.dataset(); got != "apc" {
		t.Errorf("dataset from the activity oneof = %q, want apc", got)
	}
}

func TestActivityRowMisc(t *testing.T) {
	r := apcRecord("K", 7)
	r.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	r.Activity.AgeAtActivityYears = 1 << 20
	row := newActivityRow(r, time.Now())
	if v := valueOf(t, activityColumns, "deleted", row).([]uint8); v[0] != 1 {
		t.Errorf("deleted = %d for update type DELETE, want 1", v[0])
	}
	if v := valueOf(t, activityColumns, "age_at_activity_years", row).([]int16); v[0] != 1<<15-1 {
		t.Errorf("an out-of-range age must clamp, got %d", v[0])
	}
	if v := valueOf(t, activityColumns, "warnings", row).([][]string); !slices.Equal(v[0], []string{"W_ETHNIC:ethnic_category"}) {
		t.Errorf("warnings = %v", v[0])
	}
	if row.applicable == nil || !row.applicable.Equal(time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("applicable_time = %v", row.applicable)
	}
	if got := row.received; !got.Equal(receivedAt) || got.Location() != time.UTC {
		t.Errorf("received_time = %v, want %v in UTC", got, receivedAt)
	}
}

// valueOf is column name of rows as an INSERT sends it: each row packed,
// and the column unpacked from the packed rows.
func valueOf[R any](t *testing.T, cols []column[R], name string, rows ...R) any {
	t.Helper()
	l := layoutOf(cols)
	pos, ok := l.pos[name]
	if !ok {
		t.Fatalf("no column %s", name)
	}
	c := builder{kind: l.kinds[pos]}
	c.reset(len(rows))
	for i := range rows {
		v, _, err := l.value(packRow(cols, &rows[i], nil), name)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if _, err := c.read(v); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	return c.values()
}

func TestRejectionRows(t *testing.T) {
	noReasons := deadLetter(5)
	noProvider := deadLetter(6, failure("R2", "site_code"))
	noProvider.ProviderCode = ""
	warn := failure("W1", "ethnic_category")
	warn.Severity = dmicv1.Severity_SEVERITY_WARNING
	rows := rejectionRows([]*dmicv1.DeadLetter{
		deadLetter(4, failure("R1", "nhs_number"), warn),
		nil,
		noReasons,
		noProvider,
	})
	if len(rows) != 4 {
		t.Fatalf("got %d rows, want 4 (two failures, one UNKNOWN, one more)", len(rows))
	}
	rules := valueOf(t, rejectionColumns, "rule_id", rows...).([]string)
	if !slices.Equal(rules, []string{"R1", "W1", "UNKNOWN", "R2"}) {
		t.Errorf("rule_id = %v", rules)
	}
	sev := valueOf(t, rejectionColumns, "severity", rows...).([]string)
	if !slices.Equal(sev, []string{"error", "warning", "error", "error"}) {
		t.Errorf("severity = %v", sev)
	}
	prov := valueOf(t, rejectionColumns, "provider_code", rows...).([]string)
	if prov[3] != "RR8" {
		t.Errorf("provider_code falls back to the provider submitter, got %q", prov[3])
	}
}

func TestReconciliationRows(t *testing.T) {
	noDate := reconciliation("M2", 1, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_UNSPECIFIED)
	noDate.ActivityDate = ""
	var rows []reconciliationRow
	for _, r := range []*dmicv1.ReconciliationResult{
		reconciliation("M1", 4, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED, "hrg_code"), noDate,
	} {
		rows = append(rows, newReconciliationRow(r))
	}
	if s := valueOf(t, reconciliationColumns, "status", rows...).([]string); !slices.Equal(s, []string{"mismatched", "unspecified"}) {
		t.Errorf("status = %v", s)
	}
	d := valueOf(t, reconciliationColumns, "activity_date", rows...).([]*time.Time)
	if d[0] == nil || d[1] != nil {
		t.Errorf("activity_date = %v, want a date then NULL", d)
	}
	if f := valueOf(t, reconciliationColumns, "differing_fields", rows...).([][]string); f[1] == nil {
		t.Error("differing_fields must be an empty array, not nil")
	}
}

func TestSplitByMonth(t *testing.T) {
	var rows []activityRow
	start := time.Date(2015, 1, 15, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 250; i++ {
		rows = append(rows, activityRow{date: start.AddDate(0, i%120, 0)})
	}
	month := func(r activityRow) int { return monthOf(r.date) }
	if got := splitByMonth(rows[:50], month, 90); len(got) != 1 || len(got[0]) != 50 {
		t.Fatalf("50 rows in 50 months: %d chunks", len(got))
	}
	chunks := splitByMonth(rows, month, 90)
	if len(chunks) != 2 {
		t.Fatalf("120 months with at most 90 per insert: %d chunks, want 2", len(chunks))
	}
	total := 0
	for _, c := range chunks {
		months := map[int]bool{}
		for _, r := range c {
			months[monthOf(r.date)] = true
		}
		if len(months) > 90 {
			t.Errorf("chunk spans %d months", len(months))
		}
		total += len(c)
	}
	if total != len(rows) {
		t.Errorf("chunks hold %d rows, want %d", total, len(rows))
	}
}

// TestDDLRunsOnOldAndNew guards the rules for DDL that must run on 18.16 and
// on current ClickHouse.
func TestDDLRunsOnOldAndNew(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)DateTime64|\bTTL\b|LowCardinality|ADD COLUMN IF NOT EXISTS|CREATE OR REPLACE|\bJSON\b|Map\(`)
	var all []string
	for _, tb := range tables() {
		all = append(all, tb.createSQL("dmic"))
	}
	for _, v := range views("dmic") {
		all = append(all, v.createSQL("dmic"))
	}
	for _, s := range all {
		if m := forbidden.FindString(s); m != "" {
			t.Errorf("DDL uses %q, which 18.16 does not have:\n%s", m, s)
		}
		if !strings.Contains(s, "IF NOT EXISTS") {
			t.Errorf("DDL must be idempotent:\n%s", s)
		}
	}
	ins := insertSQL("dmic", TableActivity, activityColumns)
	if strings.Contains(ins, "loaded_at") || !strings.Contains(ins, "(record_key, version, deleted,") {
		t.Errorf("insert must list the inserted columns and leave loaded_at to the server: %s", ins)
	}
}

func TestValidateDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"dmic", true}, {"_t1", true}, {"dmic_test_2", true},
		{"", false}, {"1dmic", false}, {"dmic; DROP TABLE x", false}, {"dm-ic", false}, {"`dmic`", false}, {strings.Repeat("a", 65), false},
	} {
		if err := validateDatabase(tc.name); (err == nil) != tc.ok {
			t.Errorf("validateDatabase(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if err := NewWriter(nil, "bad name").WriteActivity(t.Context(), []*dmicv1.DeidentifiedRecord{apcRecord("K", 1)}); err == nil {
		t.Error("a writer with an invalid database name must refuse to write")
	}
	if err := NewWriter(nil, "dmic").WriteActivity(t.Context(), nil); err != nil {
		t.Errorf("an empty batch is a no-op, got %v", err)
	}
}

func TestRedact(t *testing.T) {
	if got := redact("clickhouse://dmic:s3cret@ch1:9000/dmic"); strings.Contains(got, "s3cret") {
		t.Errorf("redact leaves the password: %s", got)
	}
	if got := redact("localhost:9000"); got != "localhost:9000" {
		t.Errorf("redact(host:port) = %s", got)
	}
}
